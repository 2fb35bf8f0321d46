"""Spanish prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

los/las, "todos/todas", es/son, sea/sean, and the countries that take an article.
"""

from __future__ import annotations

import re

from grammar_common import MASK, rendered, word_before

ENDING = MASK + "?"
ARTICLES = {"el", "la", "los", "las"}

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


def expected(template_id, group, key) -> list[str]:
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


def test_spanish_questions_open_with_inverted_mark():
    problems = [p.sentence for _, p in rendered("es") if not p.sentence.startswith("¿")]
    assert not problems, problems


def test_spanish_articles():
    """No "de el"/"a el" (del, al); countries without an article really have none."""
    problems = []
    for group, prompt in rendered("es"):
        s = prompt.sentence
        if re.search(r"\b(de|a) el\b", s):
            problems.append(f"{s!r}: contract to del/al")
        bare_country = (group.category == "country" and group.number == "sg"
                        and group.text not in ES_COUNTRY_ARTICLE)
        if bare_country and word_before(s, group.text) in ARTICLES:
            problems.append(f"{s!r}: {group.text} takes no article")
    assert not problems, "\n".join(problems)
