"""Every shipped prompt sentence is well formed and agrees with its group (no model needed).

Renders every template with every group in every language of ``prompts/`` and checks the surface
(one mask, nothing left of a placeholder, no doubled space or article, the mask where one adjective
goes) and the grammar against the expected forms of ``tests/test_grammar_<language>.py``, written
independently of the ``agreement`` tables of the YAML files. Adding a language means adding its
prompt file and its grammar module (see ``tests/grammar_common.py`` for what the module defines).
"""

from __future__ import annotations

import re

import pytest

from grammar_common import (
    COUNTRY_TEMPLATES,
    GROUP_TEMPLATES,
    MASK,
    key_of,
    language_module,
    loaded,
    rendered,
)
from probing.prompts import CATEGORIES, available_languages

LANGUAGES = sorted(available_languages())
PEOPLE_WORDS = ("personnes", "personas", "persone", "pessoas")  # feminine head nouns


def test_every_shipped_language_has_a_grammar_module():
    missing = [lang for lang in LANGUAGES if language_module(lang) is None]
    assert not missing, f"add tests/test_grammar_<language>.py with expected forms for {missing}"


def test_inventory():
    """Parallel ids in the same order, every category, enough groups and templates."""
    reference = [(g.id, g.category) for g in loaded()["en"].groups]
    assert len(reference) >= 80, f"{len(reference)} groups"
    assert {c for _, c in reference} == set(CATEGORIES), "a category has no group"
    for lang, prompts in loaded().items():
        assert [(g.id, g.category) for g in prompts.groups] == reference, lang
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", g.id) for g in prompts.groups)
        ids = {t.id: t.applies_to for t in prompts.templates}
        assert {i for i, k in ids.items() if k == "groups"} == GROUP_TEMPLATES, lang
        assert {i for i, k in ids.items() if k == "countries"} == COUNTRY_TEMPLATES, lang
        others = [g for g in prompts.groups if g.category != "country" and g.text is not None]
        assert all(g.number == "pl" for g in others), lang


def test_declared_gender_is_plausible():
    """The agreement tests trust each group's declared gender; this check does not.

    A group that is female or male in English (women, fathers) has that grammatical gender in
    every language, or one of the language's ``EXTRA_GENDERS_FOR_PEOPLE`` (Greek neuter: τα
    κορίτσια); "personnes"/"personas"/"persone"/"pessoas ..." are feminine.
    """
    english = {g.id: g.gender for g in loaded()["en"].groups}
    problems = []
    for lang, prompts in loaded().items():
        extra = getattr(language_module(lang), "EXTRA_GENDERS_FOR_PEOPLE", set())
        for group in prompts.groups:
            if group.text is None:
                continue
            where = f"{lang} {group.id} {group.text!r} declared {group.gender}"
            meaning = english[group.id]
            if meaning in ("f", "m") and group.gender not in {meaning} | extra:
                problems.append(f"{where}, but it is {meaning} in en.yaml")
            if group.text.split(" ")[0] in PEOPLE_WORDS and group.gender != "f":
                problems.append(f"{where}: {group.text.split(' ')[0]} is feminine")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_surface(lang):
    module = language_module(lang)
    problems = []
    for group, prompt in rendered(lang):
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
        if not s.endswith(module.ENDING):
            problems.append(f"{where}: should end with {module.ENDING!r}")
        words = [w.lower() for w in re.split(r"[ ¿]+", s.replace("l'", "l' ")) if w]
        for a, b in zip(words, words[1:]):
            if a == b and a != MASK:
                problems.append(f"{where}: doubled word {a!r}")
            if a in module.ARTICLES and b in module.ARTICLES:
                problems.append(f"{where}: two articles {a!r} {b!r}")
        if group.text not in s and not any(form in s for form in group.cases.values()):
            problems.append(f"{where}: group text {group.text!r} not rendered")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_agreement(lang):
    module, prompts, problems = language_module(lang), loaded()[lang], []
    for group, prompt in rendered(lang):
        key = key_of(prompts, group)
        for fragment in module.expected(prompt.template_id, group, key):
            if fragment not in prompt.sentence:
                problems.append(
                    f"{group.id} ({group.gender}.{group.number})/{prompt.template_id}: "
                    f"{prompt.sentence!r} lacks {fragment!r}"
                )
    assert not problems, "\n".join(problems)
