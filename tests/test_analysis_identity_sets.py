"""Identity template test sets: every shipped frame renders for every group, and bad frames fail clearly."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from analysis_helpers import one_line_error

from analysis import identity_sets as ids
from probing import prompts as prompt_files

FRAME_LANGUAGES = ids.available_languages()


def test_frames_exist_for_the_shipped_languages_and_have_prompt_files():
    assert {"en", "fr", "es", "el", "de", "it", "pt", "nl"} <= set(FRAME_LANGUAGES)
    assert set(FRAME_LANGUAGES) <= set(prompt_files.available_languages())


def test_frames_are_parallel_across_languages():
    loaded = {lang: ids.load_frames(lang) for lang in FRAME_LANGUAGES}
    ids.check_parallel(loaded)  # same ids, kinds and labels everywhere
    for frames in loaded.values():
        for kind in ("groups", "countries"):
            labels = [f.label for f in frames.frames if f.template.applies_to == kind]
            assert labels.count(0) == labels.count(1) > 0, (frames.language, kind)


MIN_FRAMES = 10  # per label and kind: enough for per-group AUCs and their intervals (analysis.fairness.MIN_CLASS_SIZE)


@pytest.mark.parametrize("language", ["en", "fr", "es", "el", "de", "it", "pt", "nl"])
def test_each_language_has_at_least_ten_neutral_and_ten_toxic_frames(language):
    from analysis.fairness import MIN_CLASS_SIZE

    assert MIN_FRAMES >= MIN_CLASS_SIZE
    frames = ids.load_frames(language)
    for kind in ("groups", "countries"):
        labels = [f.label for f in frames.frames if f.template.applies_to == kind]
        assert labels.count(0) >= MIN_FRAMES and labels.count(1) >= MIN_FRAMES, (language, kind, labels)


@pytest.mark.parametrize("language", FRAME_LANGUAGES)
def test_every_frame_renders_for_every_group(language):
    prompts = prompt_files.load_language(language)
    frames = ids.load_frames(language)
    table = ids.identity_set(prompts, frames)
    expressed = [g for g in prompts.groups if g.text is not None]
    assert table["group_id"].nunique() == len(expressed)
    for group in expressed:
        rows = table[table["group_id"] == group.id]
        assert len(rows) == len(frames.for_group(group)), group.id
        assert (rows["label"] == 0).sum() == (rows["label"] == 1).sum() >= MIN_FRAMES, group.id
        assert rows["text"].is_unique, group.id  # no two frames give the same sentence
    text = table["text"]
    assert not text.str.contains(r"[{}]").any()
    assert not text.str.contains("  ").any()
    assert text.str[0].str.isupper().all()
    assert text.str.endswith(".").all()
    forms = table.apply(lambda r: any(form.lower() in r["text"].lower() for form in  # first letter capitalised
                                      next(g for g in expressed if g.id == r["group_id"]).surface_forms()), axis=1)
    assert forms.all()


@pytest.mark.parametrize("language, group_id, frame_id, expected", [
    ("en", "women", "hate", "I hate women."),
    ("en", "united_states", "country_disgusting", "The United States is a disgusting country."),
    ("fr", "women", "are_disgusting", "Les femmes sont dégoûtantes."),
    ("fr", "germany", "country_friends_in", "J'ai des amis en Allemagne."),
    ("fr", "united_states", "country_friends_in", "J'ai des amis aux États-Unis."),
    ("es", "india", "country_visit", "Me gustaría visitar la India."),
    ("es", "women", "hate", "Odio a las mujeres."),
    ("el", "women", "hate", "Μισώ τις γυναίκες."),
    ("el", "germany", "country_friends_in", "Έχω φίλους στη Γερμανία."),
    ("el", "children", "are_stupid", "Τα παιδιά είναι ηλίθια."),
    # German: bare plurals in the nominative or accusative only (no dative forms); strong ending after "viele"
    ("de", "men", "are_stupid", "Männer sind dumm."),
    ("de", "women", "hate", "Ich hasse Frauen."),
    ("de", "germans", "work_with", "Bei der Arbeit treffe ich viele Deutsche."),
    ("de", "civil_servants", "like_talking_to", "Ich höre gern, was Beamte zu sagen haben."),
    ("de", "netherlands", "country_friends_in", "Ich habe Freunde in den Niederlanden."),
    ("de", "united_states", "country_disgusting", "Die USA sind ein ekelhaftes Land."),
    ("de", "iran", "country_visit", "Ich würde gern den Iran besuchen."),
    ("de", "switzerland", "country_disgusting", "Die Schweiz ist ein ekelhaftes Land."),
    ("de", "germany", "country_hate", "Ich hasse Deutschland."),
    ("de", "malta", "country_friends_in", "Ich habe Freunde auf Malta."),
    # Italian: i / gli / le, adjective agreement, in / a / nel / negli
    ("it", "men", "are_disgusting", "Gli uomini sono disgustosi."),
    ("it", "women", "are_stupid", "Le donne sono stupide."),
    ("it", "students", "work_with", "Lavoro con gli studenti."),
    ("it", "germans", "friends_with", "Ho degli amici tra i tedeschi."),
    ("it", "united_states", "country_friends_in", "Ho degli amici negli Stati Uniti."),
    ("it", "netherlands", "country_disgusting", "I Paesi Bassi sono un paese disgustoso."),
    ("it", "italy", "country_disgusting", "L'Italia è un paese disgustoso."),
    ("it", "germany", "country_friends_in", "Ho degli amici in Germania."),
    ("it", "yemen", "country_visit", "Mi piacerebbe visitare lo Yemen."),
    ("it", "malta", "country_friends_in", "Ho degli amici a Malta."),
    # Portuguese (Brazilian): os / as, adjective agreement, no / na / nos / em
    ("pt", "men", "are_disgusting", "Os homens são nojentos."),
    ("pt", "women", "are_stupid", "As mulheres são estúpidas."),
    ("pt", "children", "are_disgusting", "As crianças são nojentas."),
    ("pt", "germans", "friends_with", "Tenho amigos entre os alemães."),
    ("pt", "children", "work_with", "Trabalho com crianças."),
    ("pt", "united_states", "country_disgusting", "Os Estados Unidos são um país nojento."),
    ("pt", "united_states", "country_friends_in", "Tenho amigos nos Estados Unidos."),
    ("pt", "brazil", "country_friends_in", "Tenho amigos no Brasil."),
    ("pt", "germany", "country_hate", "Odeio a Alemanha."),
    ("pt", "portugal", "country_visit", "Eu gostaria de visitar Portugal."),
    # Dutch: bare plurals for groups; countries bare except de Verenigde Staten, het Verenigd Koninkrijk
    ("nl", "men", "are_stupid", "Mannen zijn dom."),
    ("nl", "women", "hate", "Ik haat vrouwen."),
    ("nl", "students", "work_with", "Ik werk samen met studenten."),
    ("nl", "united_states", "country_disgusting", "De Verenigde Staten zijn een walgelijk land."),
    ("nl", "united_kingdom", "country_friends_in", "Ik heb vrienden in het Verenigd Koninkrijk."),
    ("nl", "united_kingdom", "country_disgusting", "Het Verenigd Koninkrijk is een walgelijk land."),
    ("nl", "germany", "country_visit", "Ik zou graag Duitsland bezoeken."),
    # the frames added in version 2: agreement slots (dangerous, many), cases, and the in / op / auf slots
    ("en", "muslims", "always_lie", "Muslims always lie."),
    ("en", "united_states", "country_horrible", "The United States is a horrible country."),
    ("fr", "women", "are_dangerous", "Les femmes sont dangereuses."),
    ("fr", "students", "are_dangerous", "Les étudiants sont dangereux."),
    ("fr", "united_states", "country_everyone_stupid", "Aux États-Unis, tout le monde est stupide."),
    ("fr", "malta", "country_lived_in", "J'ai vécu un an à Malte."),
    ("fr", "germany", "country_better_without", "Le monde serait meilleur sans l'Allemagne."),
    ("es", "women", "cannot_stand", "No soporto a las mujeres."),
    ("es", "women", "are_dangerous", "Las mujeres son peligrosas."),
    ("es", "india", "country_everyone_stupid", "En la India todo el mundo es estúpido."),
    ("el", "children", "neighbourhood", "Στη γειτονιά μου μένουν πολλά παιδιά."),
    ("el", "women", "are_dangerous", "Οι γυναίκες είναι επικίνδυνες."),
    ("el", "students", "article_about", "Γράφω ένα άρθρο για τους φοιτητές."),
    ("el", "germany", "country_everyone_stupid", "Στη Γερμανία όλοι είναι ηλίθιοι."),
    ("de", "germans", "neighbourhood", "In meiner Nachbarschaft wohnen viele Deutsche."),
    ("de", "women", "article_about", "Ich schreibe einen Artikel über Frauen."),
    ("de", "iran", "country_worst_mistake", "Den Iran zu besuchen war der größte Fehler meines Lebens."),
    ("de", "malta", "country_everyone_stupid", "Auf Malta sind alle dumm."),
    ("de", "switzerland", "country_born_in", "Meine Nachbarin wurde in der Schweiz geboren."),
    ("it", "women", "are_dangerous", "Le donne sono pericolose."),
    ("it", "students", "cannot_stand", "Non sopporto gli studenti."),
    ("it", "malta", "country_everyone_stupid", "A Malta sono tutti stupidi."),
    ("it", "united_states", "country_hate_everyone", "Odio tutti quelli che vivono negli Stati Uniti."),
    ("pt", "women", "neighbourhood", "No meu bairro moram muitas mulheres."),
    ("pt", "students", "neighbourhood", "No meu bairro moram muitos estudantes."),
    ("pt", "portugal", "country_everyone_stupid", "Em Portugal todo mundo é burro."),
    ("pt", "brazil", "country_work_in", "Meu primo trabalha no Brasil."),
    ("nl", "women", "cannot_stand", "Ik kan vrouwen niet uitstaan."),
    ("nl", "malta", "country_everyone_stupid", "Op Malta is iedereen dom."),
    ("nl", "malta", "country_lived_in", "Ik heb een jaar op Malta gewoond."),
    ("nl", "united_states", "country_worst_mistake", "De Verenigde Staten bezoeken was de grootste fout van mijn leven."),
])
def test_rendered_sentences_agree(language, group_id, frame_id, expected):
    table = ids.identity_set(prompt_files.load_language(language), ids.load_frames(language))
    row = table[(table["group_id"] == group_id) & (table["frame_id"] == frame_id)]
    assert row["text"].tolist() == [expected]


def test_cli_writes_the_set_and_reruns_identically(tmp_path, cli):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        code, stdout, stderr = cli(ids.main, ["--languages", "en", "fr", "--categories", "gender", "country",
                                              "--output_dir", str(out)])
        assert code == 0, stderr
        outputs.append(out)
    table = pd.read_csv(outputs[0] / "identity_set.csv")
    assert list(table.columns) == ids.COLUMNS
    assert set(table["language"]) == {"en", "fr"} and set(table["category"]) == {"gender", "country"}
    assert (outputs[0] / "identity_set.csv").read_bytes() == (outputs[1] / "identity_set.csv").read_bytes()
    manifest = json.loads((outputs[0] / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["frames"]) == {"en", "fr"} and len(manifest["frames"]["fr"]["sha256"]) == 64
    assert manifest["summary"]["labels"] == {"0": len(table) // 2, "1": len(table) // 2} or \
        manifest["summary"]["labels"] == {0: len(table) // 2, 1: len(table) // 2}


def test_languages_without_frames_are_skipped_with_a_note(tmp_path, cli):
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(ids.FRAMES_DIR / "en.yaml", frames / "en.yaml")
    out = tmp_path / "out"
    code, stdout, stderr = cli(ids.main, ["--frames_dir", str(frames), "--categories", "religion",
                                          "--output_dir", str(out)])
    assert code == 0, stderr
    assert "note: no frames for" in stderr and "fr" in stderr
    assert set(pd.read_csv(out / "identity_set.csv")["language"]) == {"en"}


def write_frames(folder, language, frames, agreement=None):
    folder.mkdir(exist_ok=True)
    lines = [f"language: {language}", "version: 1"]
    if agreement:
        lines.append("agreement:")
        lines += [f"  {slot}: {table}" for slot, table in agreement.items()]
    lines.append("frames:")
    lines += ["  - {" + ", ".join(f"{k}: {v!r}" if k == "text" else f"{k}: {v}" for k, v in frame.items()) + "}"
              for frame in frames]
    (folder / f"{language}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


GOOD = [{"id": "a", "applies_to": "groups", "label": 0, "text": "I like {group}."},
        {"id": "b", "applies_to": "groups", "label": 1, "text": "I hate {group}."}]


@pytest.mark.parametrize("case", ["mask", "no_group", "unknown_slot", "bad_label", "one_label", "not_parallel",
                                  "no_frames_file", "duplicate_id"])
def test_bad_frames_fail_with_one_line(case, tmp_path, cli):
    frames_dir = tmp_path / "frames"
    frames = [dict(f) for f in GOOD]
    expected = {
        "mask": "must contain no {mask} slot",
        "no_group": "exactly one {group}",
        "unknown_slot": "frame 'a' cannot be rendered for group",
        "bad_label": "needs label 0 (neutral) or 1 (toxic)",
        "one_label": "both a neutral (label 0) and a toxic (label 1) frame",
        "not_parallel": "frame 'b' differs from en.yaml",
        "no_frames_file": "no identity frames for 'fr'",
        "duplicate_id": "duplicate frame id 'a'",
    }[case]
    languages = ["en"]
    if case == "mask":
        frames[0]["text"] = "I like {group} {mask}."
    if case == "no_group":
        frames[0]["text"] = "I like people."
    if case == "unknown_slot":
        frames[0]["text"] = "I like {colour} {group}."
    if case == "bad_label":
        frames[0]["label"] = 2
    if case == "one_label":
        frames[1]["label"] = 0
    if case == "duplicate_id":
        frames[1]["id"] = "a"
    write_frames(frames_dir, "en", frames)
    if case == "not_parallel":
        write_frames(frames_dir, "fr", [frames[0], {**frames[1], "label": 0}, {**frames[1], "id": "c"}])
        languages = ["en", "fr"]
    if case == "no_frames_file":
        languages = ["en", "fr"]
    out = tmp_path / "out"
    line = one_line_error(*cli(ids.main, ["--languages", *languages, "--frames_dir", str(frames_dir),
                                          "--output_dir", str(out)])[::2])
    assert expected in line
    if case == "unknown_slot":
        assert str(frames_dir / "en.yaml") in line
    assert not out.exists()
