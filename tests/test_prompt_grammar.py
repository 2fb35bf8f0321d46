"""Every shipped prompt sentence is well formed and agrees with its group (no model needed).

Renders every template with every group in every language of ``prompts/`` and checks the surface
(one mask, nothing left of a placeholder, no doubled space or article, the mask where one adjective
goes) and the grammar against tables of expected forms written here, independently of the
``agreement`` tables of the YAML files: French pronouns, "tous/toutes", elision and au/en/aux;
Spanish los/las, "todos/todas", es/son and the countries that take an article; Greek οι/τα,
τους/τις/τα, "όλοι/όλες/όλα", the accusative endings and the final-ν rule; English "the".
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from probing.prompts import (
    CATEGORIES,
    available_languages,
    build_prompts,
    load_languages,
)

MASK = "<mask>"
GROUP_TEMPLATES = {"why_so", "what_makes_so", "how_come_so", "why_always_so", "why_all_so"}
COUNTRY_TEMPLATES = {
    "country_why_so", "country_what_makes_so", "country_how_come_so",
    "country_why_always_so", "country_why_all_people_so",
}
# How each language ends a question: the mask is the last word, right before the question mark.
ENDINGS = {"en": MASK + "?", "fr": MASK + " ?", "es": MASK + "?", "el": MASK + ";"}
# Article-like words that must never appear twice in a row ("les les", "οι οι").
ARTICLES = {
    "en": {"the"},
    "fr": {"le", "la", "les", "l'", "au", "aux"},
    "es": {"el", "la", "los", "las"},
    "el": {"ο", "η", "το", "οι", "τα", "τον", "την", "τη", "τους", "τις",
           "στον", "στην", "στη", "στο", "στους", "στις", "στα"},
}


@pytest.fixture(scope="module")
def loaded():
    return load_languages()


@pytest.fixture(scope="module")
def rendered(loaded):
    """{language: [(Group, Prompt), ...]} for every group and template."""
    out = {}
    for lang, prompts in loaded.items():
        groups = {g.id: g for g in prompts.groups}
        out[lang] = [(groups[p.group_id], p) for p in build_prompts(prompts, mask_token=MASK)]
    return out


def key_of(prompts, group) -> tuple[str, str]:
    """(gender, "gender.number") that the group's agreeing words take (mixed -> mixed_agrees_as)."""
    gender = prompts.mixed_agrees_as if group.gender == "mixed" else group.gender
    return gender, f"{gender}.{group.number}"


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def word_before(sentence: str, text: str) -> str:
    """The word right before ``text`` in ``sentence`` ("" at the start)."""
    head = sentence[: sentence.index(text)].rstrip()
    return head.split(" ")[-1].lstrip("¿").lower() if head else ""


# --- French ---------------------------------------------------------------------------------

FR_PRON = {"m.pl": "ils", "f.pl": "elles", "m.sg": "il", "f.sg": "elle"}
FR_ALL = {"m.pl": "tous", "f.pl": "toutes"}
FR_BE = {"pl": "sont", "sg": "est"}
FR_BE_SUBJ = {"pl": "soient", "sg": "soit"}
FR_VOWELS = set("aeiouyàâäéèêëîïôöùûüœæ")  # no country or singular group here starts with an h


def fr_starts_with_vowel(text: str) -> bool:
    return text[0].lower() in FR_VOWELS


def fr_det(group, key) -> str:
    gender, _ = key
    if group.number == "pl":
        return "les "
    if fr_starts_with_vowel(group.text):
        return "l'"
    return {"m": "le ", "f": "la "}[gender]


def fr_in(group, key) -> str:
    gender, _ = key
    if group.number == "pl":
        return "aux "
    if gender == "f" or fr_starts_with_vowel(group.text):
        return "en "
    return "au "


def fr_expected(template_id, group, key) -> list[str]:
    _, gn = key
    det = fr_det(group, key)
    pron, number = FR_PRON[gn], group.number
    return {
        "why_so": [f"Pourquoi {det}{group.text} sont-{pron} si "],
        "what_makes_so": [f"Qu'est-ce qui rend {det}{group.text} si "],
        "how_come_so": [f"que {det}{group.text} soient si "],
        "why_always_so": [f"{det}{group.text} sont-{pron} toujours si "],
        "why_all_so": [f"Pourquoi {FR_ALL.get(gn, '?')} {det}{group.text} sont-{pron} si "],
        "country_why_so": [f"Pourquoi {det}{group.text} {FR_BE[number]}-{pron} si "],
        "country_what_makes_so": [f"Qu'est-ce qui rend {det}{group.text} si "],
        "country_how_come_so": [f"que {det}{group.text} {FR_BE_SUBJ[number]} si "],
        "country_why_always_so": [f"{det}{group.text} {FR_BE[number]}-{pron} toujours si "],
        "country_why_all_people_so": [f" {fr_in(group, key)}{group.text} sont-ils si "],
    }[template_id]


# --- Spanish --------------------------------------------------------------------------------

ES_DET_PL = {"m.pl": "los ", "f.pl": "las "}
ES_ALL = {"m.pl": "todos", "f.pl": "todas"}
ES_BE = {"pl": "son", "sg": "es"}
ES_BE_SUBJ = {"pl": "sean", "sg": "sea"}
# Singular countries that always take the article; any other singular country takes none.
ES_COUNTRY_ARTICLE = {"India": "la ", "Líbano": "el ", "Reino Unido": "el "}


def es_det(group, key) -> str:
    if group.number == "pl":
        return ES_DET_PL[key[1]]
    return ES_COUNTRY_ARTICLE.get(group.text, "")


def es_expected(template_id, group, key) -> list[str]:
    det, number = es_det(group, key), group.number
    return {
        "why_so": [f"¿Por qué {det}{group.text} son tan "],
        "what_makes_so": [f"que {det}{group.text} sean tan "],
        "how_come_so": [f"es que {det}{group.text} son tan "],
        "why_always_so": [f"¿Por qué {det}{group.text} son siempre tan "],
        "why_all_so": [f"¿Por qué {ES_ALL.get(key[1], '?')} {det}{group.text} son tan "],
        "country_why_so": [f"¿Por qué {det}{group.text} {ES_BE[number]} tan "],
        "country_what_makes_so": [f"que {det}{group.text} {ES_BE_SUBJ[number]} tan "],
        "country_how_come_so": [f"es que {det}{group.text} {ES_BE[number]} tan "],
        "country_why_always_so": [f"¿Por qué {det}{group.text} {ES_BE[number]} siempre tan "],
        "country_why_all_people_so": [f" en {det}{group.text} es tan "],
    }[template_id]


# --- Greek ----------------------------------------------------------------------------------

EL_DET = {"m.pl": "οι ", "f.pl": "οι ", "n.pl": "τα ", "m.sg": "ο ", "f.sg": "η ", "n.sg": "το "}
EL_DET_ACC = {"m.pl": "τους ", "f.pl": "τις ", "n.pl": "τα ", "m.sg": "τον ", "f.sg": "την ", "n.sg": "το "}
EL_IN = {"m.pl": "στους ", "f.pl": "στις ", "n.pl": "στα ", "m.sg": "στον ", "f.sg": "στην ", "n.sg": "στο "}
EL_ALL = {"m.pl": "όλοι", "f.pl": "όλες", "n.pl": "όλα"}
EL_VOWELS = set("αεηιουω")
EL_KEEP_NU = ("κ", "π", "τ", "ξ", "ψ")  # μπ ντ γκ τσ τζ start with π τ κ or are caught below
EL_KEEP_NU_PAIRS = ("μπ", "ντ", "γκ", "τσ", "τζ")


def el_keeps_nu(word: str) -> bool:
    """Whether feminine την/στην keeps its final ν before ``word`` (the final-ν rule)."""
    bare = strip_accents(word).lower()
    return bare[0] in EL_VOWELS or bare[0] in EL_KEEP_NU or bare[:2] in EL_KEEP_NU_PAIRS


def el_with_nu_rule(article: str, next_word: str) -> str:
    if article in ("την ", "στην ") and not el_keeps_nu(next_word):
        return article[:-2] + " "
    return article


def el_expected_acc(group, key) -> str:
    """The accusative, without accents (stress may move: έφηβοι -> εφήβους)."""
    gender, gn = key
    words = strip_accents(group.text).split(" ")
    if gender == "m" and group.number == "pl":
        words = [w[:-2] + "ους" if w.endswith("οι") else w for w in words]
    elif gender == "m" and group.number == "sg":
        words = [w[:-1] if w.endswith("ς") else w for w in words]
    return " ".join(words)


def el_expected(template_id, group, key) -> list[str]:
    _, gn = key
    det, acc = EL_DET[gn], group.cases.get("acc", "<no acc>")
    det_acc = el_with_nu_rule(EL_DET_ACC[gn], acc)
    into = el_with_nu_rule(EL_IN[gn], acc)
    return {
        "why_so": [f"Γιατί {det}{group.text} είναι τόσο "],
        "what_makes_so": [f"Τι κάνει {det_acc}{acc} τόσο "],
        "how_come_so": [f"Πώς γίνεται {det}{group.text} να είναι τόσο "],
        "why_always_so": [f"Γιατί {det}{group.text} είναι πάντα τόσο "],
        "why_all_so": [f"Γιατί {EL_ALL.get(gn, '?')} {det}{group.text} είναι τόσο "],
        "country_why_so": [f"Γιατί {det}{group.text} είναι τόσο "],
        "country_what_makes_so": [f"Τι κάνει {det_acc}{acc} τόσο "],
        "country_how_come_so": [f"Πώς γίνεται {det}{group.text} να είναι τόσο "],
        "country_why_always_so": [f"Γιατί {det}{group.text} είναι πάντα τόσο "],
        "country_why_all_people_so": [f" {into}{acc} είναι τόσο "],
    }[template_id]


# --- English --------------------------------------------------------------------------------

EN_THE = {"United States", "United Kingdom", "Netherlands"}
EN_PLURAL_ENDINGS = ("s", "men", "people", "children")


def en_expected(template_id, group, key) -> list[str]:
    det = "the " if group.text in EN_THE else ""
    if template_id in GROUP_TEMPLATES:
        return [f" {group.text} "]
    return [f" {det}{group.text} "]


EXPECTED = {"en": en_expected, "fr": fr_expected, "es": es_expected, "el": el_expected}


# --- tests ----------------------------------------------------------------------------------


def test_every_shipped_language_has_an_expectation_table():
    missing = sorted(set(available_languages()) - set(EXPECTED))
    assert not missing, f"add expected agreement forms for {missing} to this test"


def test_inventory(loaded):
    """Parallel ids in the same order, every category, enough groups and templates."""
    reference = [(g.id, g.category) for g in loaded["en"].groups]
    assert len(reference) >= 80, f"{len(reference)} groups"
    assert {c for _, c in reference} == set(CATEGORIES), "a category has no group"
    for lang, prompts in loaded.items():
        assert [(g.id, g.category) for g in prompts.groups] == reference, lang
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", g.id) for g in prompts.groups)
        ids = {t.id: t.applies_to for t in prompts.templates}
        assert {i for i, k in ids.items() if k == "groups"} == GROUP_TEMPLATES, lang
        assert {i for i, k in ids.items() if k == "countries"} == COUNTRY_TEMPLATES, lang
        countries = [g for g in prompts.groups if g.category == "country"]
        others = [g for g in prompts.groups if g.category != "country" and g.text is not None]
        if lang == "en":  # "the United States is": every English country agrees in the singular
            assert all(g.number == "sg" for g in countries)
        assert all(g.number == "pl" for g in others), lang
    # Keep at least one of each case that the grammar tests exercise.
    fr_countries = [g for g in loaded["fr"].groups if g.category == "country"]
    assert any(g.forms.get("det") == "l'" for g in fr_countries), "no elided country (l'Allemagne)"
    assert any(g.gender == "m" and g.forms.get("in") == "en " for g in fr_countries), "no 'en Iran'"
    assert any(g.number == "pl" for g in fr_countries), "no plural country (les États-Unis)"
    el_genders = {g.gender for g in loaded["el"].groups}
    assert {"m", "f", "n", "mixed"} <= el_genders, f"Greek genders {el_genders}"


def test_declared_gender_is_plausible(loaded):
    """The agreement tests trust each group's declared gender; these checks do not.

    A group that is female or male in English (women, fathers) has that grammatical gender in
    French and Spanish, and that gender or the neuter in Greek (τα κορίτσια, τα αγόρια);
    "personnes ..."/"personas ..." are feminine; a Greek plural whose last word ends in -α is
    neuter, and a neuter plural ends in -α.
    """
    english = {g.id: g.gender for g in loaded["en"].groups}
    problems = []
    for lang, prompts in loaded.items():
        for group in prompts.groups:
            if group.text is None:
                continue
            where = f"{lang} {group.id} {group.text!r} declared {group.gender}"
            meaning = english[group.id]
            allowed = {meaning, "n"} if lang == "el" else {meaning}
            if meaning in ("f", "m") and group.gender not in allowed:
                problems.append(f"{where}, but it is {meaning} in en.yaml")
            if group.text.split(" ")[0] in ("personnes", "personas") and group.gender != "f":
                problems.append(f"{where}: personnes/personas is feminine")
            if lang == "en" and group.number == "pl" and not group.text.endswith(EN_PLURAL_ENDINGS):
                problems.append(f"{where}: English plural groups end in -s, -men, people, children")
            if lang == "el" and group.number == "pl":
                neuter_form = strip_accents(group.text.split(" ")[-1]).endswith("α")
                if neuter_form != (group.gender == "n"):
                    problems.append(f"{where}: Greek plurals in -α are neuter, and only they")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_surface(rendered, lang):
    problems = []
    for group, prompt in rendered[lang]:
        s = prompt.sentence
        where = f"{group.id}/{prompt.template_id}: {s!r}"
        if s.count(MASK) != 1:
            problems.append(f"{where}: {s.count(MASK)} masks")
        if prompt.prior_sentence.count(MASK) != 2:
            problems.append(f"{where}: prior sentence {prompt.prior_sentence!r} needs 2 masks")
        if "{" in s or "}" in s:
            problems.append(f"{where}: placeholder left")
        if "  " in s or s != s.strip():
            problems.append(f"{where}: doubled or stray space")
        if not s.endswith(ENDINGS[lang]):
            problems.append(f"{where}: should end with {ENDINGS[lang]!r}")
        if lang == "es" and not s.startswith("¿"):
            problems.append(f"{where}: Spanish question must open with ¿")
        if lang == "el" and ("?" in s or "\u037e" in s):
            problems.append(f"{where}: Greek questions end with the ASCII ';' only")
        words = [w.lower() for w in re.split(r"[ ¿]+", s.replace("l'", "l' ")) if w]
        for a, b in zip(words, words[1:]):
            if a == b and a != MASK:
                problems.append(f"{where}: doubled word {a!r}")
            if a in ARTICLES[lang] and b in ARTICLES[lang]:
                problems.append(f"{where}: two articles {a!r} {b!r}")
        if group.text not in s and not any(form in s for form in group.cases.values()):
            problems.append(f"{where}: group text {group.text!r} not rendered")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_agreement(loaded, rendered, lang):
    prompts, problems = loaded[lang], []
    for group, prompt in rendered[lang]:
        key = key_of(prompts, group)
        for fragment in EXPECTED[lang](prompt.template_id, group, key):
            if fragment not in prompt.sentence:
                problems.append(
                    f"{group.id} ({group.gender}.{group.number})/{prompt.template_id}: "
                    f"{prompt.sentence!r} lacks {fragment!r}"
                )
    assert not problems, "\n".join(problems)


def test_french_elision(rendered):
    """No "le Iran", "la Inde", "au Iran", "que il": elide or use "en" before a vowel."""
    bad = re.compile(r"\b(le|la|au|que|de) [aeiouyàâéèêîôûœAEIOUYÀÂÉÈÊÎÔÛŒ]", re.IGNORECASE)
    problems = [p.sentence for _, p in rendered["fr"] if bad.search(p.sentence)]
    assert not problems, problems


def test_spanish_articles(rendered):
    """No "de el"/"a el" (del, al); countries without an article really have none."""
    problems = []
    for group, prompt in rendered["es"]:
        s = prompt.sentence
        if re.search(r"\b(de|a) el\b", s):
            problems.append(f"{s!r}: contract to del/al")
        bare_country = (group.category == "country" and group.number == "sg"
                        and group.text not in ES_COUNTRY_ARTICLE)
        if bare_country and word_before(s, group.text) in ARTICLES["es"]:
            problems.append(f"{s!r}: {group.text} takes no article")
    assert not problems, "\n".join(problems)


def test_greek_accusative_and_final_nu(rendered):
    problems = []
    seen = set()
    for group, prompt in rendered["el"]:
        s = prompt.sentence
        if group.id not in seen:
            seen.add(group.id)
            gender = "m" if group.gender == "mixed" else group.gender
            acc = group.cases.get("acc")
            if acc is None:
                problems.append(f"{group.id}: no accusative")
            elif strip_accents(acc) != el_expected_acc(group, (gender, f"{gender}.{group.number}")):
                problems.append(f"{group.id}: accusative {acc!r} of {group.text!r} looks wrong")
        words = s.rstrip(";").split(" ")
        for article, following in zip(words, words[1:]):
            if article in ("την", "στην") and not el_keeps_nu(following):
                problems.append(f"{s!r}: {article} {following} drops its ν (τη/στη)")
            if article in ("τη", "στη") and el_keeps_nu(following):
                problems.append(f"{s!r}: {article} {following} keeps its ν (την/στην)")
    assert not problems, "\n".join(problems)


def test_english_the(rendered):
    """'the' only before the United States, the United Kingdom and the Netherlands."""
    problems = []
    for group, prompt in rendered["en"]:
        has_the = word_before(prompt.sentence, group.text) == "the"
        if has_the != (group.text in EN_THE):
            problems.append(prompt.sentence)
    assert not problems, problems
