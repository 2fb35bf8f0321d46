"""English prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

"the" before the countries that take it; no agreement otherwise.
"""

from __future__ import annotations

from grammar_common import GROUP_TEMPLATES, MASK, loaded, rendered, word_before

ENDING = MASK + "?"
ARTICLES = {"the"}

EN_THE = {"United States", "United Kingdom", "Netherlands"}
EN_PLURAL_ENDINGS = ("s", "men", "people", "children")


def expected(template_id, group, key) -> list[str]:
    det = "the " if group.text in EN_THE else ""
    if template_id in GROUP_TEMPLATES:
        return [f" {group.text} "]
    return [f" {det}{group.text} "]


def test_english_the():
    """'the' only before the United States, the United Kingdom and the Netherlands."""
    problems = []
    for group, prompt in rendered("en"):
        has_the = word_before(prompt.sentence, group.text) == "the"
        if has_the != (group.text in EN_THE):
            problems.append(prompt.sentence)
    assert not problems, problems


def test_english_plurals_look_plural():
    problems = [f"{g.id} {g.text!r}" for g in loaded()["en"].groups
                if g.text is not None and g.number == "pl" and not g.text.endswith(EN_PLURAL_ENDINGS)]
    assert not problems, f"English plural groups end in -s, -men, people, children: {problems}"


def test_english_countries_agree_in_the_singular():
    """"the United States is": every English country takes a singular verb."""
    problems = [g.id for g in loaded()["en"].groups if g.category == "country" and g.number != "sg"]
    assert not problems, problems
