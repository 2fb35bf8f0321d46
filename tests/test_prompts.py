"""`python -m probing.prompts --check` accepts the shipped files and rejects broken ones."""

from __future__ import annotations

import json
import shutil

import pytest

from probing import prompts
from probing.prompts import CATEGORIES, PROMPTS_DIR

LANGUAGES = ["de", "el", "en", "es", "fr", "it", "nl", "pt"]


def test_shipped_files_pass_and_summary_counts_groups(cli):
    code, out, err = cli(prompts.main, ["--check"])
    assert code == 0, err
    summary = json.loads(out)
    assert set(LANGUAGES) <= set(summary)
    for language, counts in summary.items():
        assert list(counts) == list(CATEGORIES)
        assert all(n >= 1 for n in counts.values()), (language, counts)
        assert sum(counts.values()) >= 370, (language, counts)
    # Ids are parallel: what a language does not count, it lists as missing on stderr.
    totals = {lang: sum(counts.values()) for lang, counts in summary.items()}
    for language, total in totals.items():
        note = [line for line in err.splitlines() if line.startswith(f"note: {language} ")]
        n_missing = int(note[0].split(" marks ")[1].split(" ")[0]) if note else 0
        assert total + n_missing == totals["en"], (language, total, n_missing)
    assert not any(line.startswith("note: en ") for line in err.splitlines())


def test_shipped_files_cover_templates_and_grammar():
    loaded = prompts.load_languages(LANGUAGES)
    for language, data in loaded.items():
        kinds = [t.applies_to for t in data.templates]
        assert kinds.count("groups") >= 5 and kinds.count("countries") >= 3, language
        genders = {g.gender for g in data.groups if g.text}
        assert {"m", "f"} <= genders, language


@pytest.fixture
def prompt_copy(tmp_path):
    target = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, target)
    return target


def edit(path, old, new, count=1):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def line_of(path, needle):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


@pytest.mark.parametrize("breakage, message", [
    ("no_group_slot", "exactly one {group} slot"),
    ("no_mask", "exactly one {mask} slot"),
    ("duplicate_id", "duplicate group id"),
    ("unknown_category", "unknown category 'hobbies'"),
    ("not_parallel", "ids must be parallel"),
    ("bad_gender", "has gender 'x'"),
    ("bad_yaml", "not valid YAML"),
    ("unknown_slot", "slot {colour}"),
    ("unknown_key", "unknown key 'gendr'"),
])
def test_broken_files_are_rejected_with_file_and_line(breakage, message, prompt_copy, cli):
    path = prompt_copy / "fr.yaml"
    text = path.read_text(encoding="utf-8")
    first_group = next(line for line in text.splitlines() if line.strip().startswith("- {id:") and "category:" in line)
    first_template = next(line for line in text.splitlines() if "{mask}" in line)
    if breakage == "no_group_slot":
        edit(path, first_template, first_template.replace("{group}", "X").replace("{group.", "{x."))
        needle = "X"
    elif breakage == "no_mask":
        edit(path, first_template, first_template.replace("{mask}", "X"))
        needle = first_template.replace("{mask}", "X")
    elif breakage == "duplicate_id":
        edit(path, first_group, first_group + "\n" + first_group)
        needle = None
    elif breakage == "unknown_category":
        category = first_group.split("category:")[1].split(",")[0].strip()
        edit(path, first_group, first_group.replace(f"category: {category}", "category: hobbies"))
        needle = "hobbies"
    elif breakage == "not_parallel":
        edit(path, first_group, first_group.replace("{id: ", "{id: zz_", 1))
        needle = "zz_"
    elif breakage == "bad_gender":
        edit(path, first_group, first_group.replace("gender: ", "gender: x, note: ", 1))
        needle = "gender: x"
    elif breakage == "bad_yaml":
        edit(path, first_group, first_group.replace("}", "", 1))
        needle = None
    elif breakage == "unknown_key":
        edit(path, first_group, first_group.replace("gender: ", "gendr: ", 1))
        needle = "gendr"
    elif breakage == "unknown_slot":
        edit(path, first_template, first_template.replace("{mask}", "{colour} {mask}"))
        needle = None
    code, out, err = cli(prompts.main, ["--check", str(prompt_copy)])
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert str(path) in lines[0]
    if needle and breakage not in {"no_group_slot"}:
        assert f"{path}:{line_of(path, needle)}:" in lines[0]


def test_rendering_uses_the_tokenizer_mask_and_masks_the_group_for_the_prior():
    french = prompts.load_language("fr")
    built = prompts.build_prompts(french, mask_token="[MASK]", categories=["gender"])
    assert built and all(p.sentence.count("[MASK]") == 1 for p in built)
    assert all(p.prior_sentence.count("[MASK]") == 2 for p in built)
    assert all(p.group not in p.prior_sentence for p in built)
    assert {p.category for p in built} == {"gender"}
