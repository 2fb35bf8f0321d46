"""Spanish prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

los/las, "todos/todas", es/son, sea/sean, the countries that take an article or are plural,
the gender a noun's ending shows, lowercase demonyms and the plurals in -íes/-úes.
"""

from __future__ import annotations

import re

from grammar_common import MASK, loaded, rendered, word_before

ENDING = MASK + "?"
ARTICLES = {"el", "la", "los", "las"}

ES_DET_PL = {"m.pl": "los ", "f.pl": "las "}
ES_ALL = {"m.pl": "todos", "f.pl": "todas"}
ES_BE = {"pl": "son", "sg": "es"}
ES_BE_SUBJ = {"pl": "sean", "sg": "sea"}
# Singular countries that always take the article; any other singular country takes none.
ES_COUNTRY_ARTICLE = {"India": "la ", "Líbano": "el ", "Reino Unido": "el "}
# Countries whose name is plural: article "los" and a plural verb ("los Estados Unidos son").
# Every other country is singular, including Marruecos, Laos and Bangladés despite their -s.
ES_PLURAL_COUNTRIES = {"Estados Unidos": "los ", "Países Bajos": "los "}
ES_SINGULAR_IN_S = {"Marruecos", "Laos", "Bangladés"}
# A country's gender is its head noun's (first word): unstressed final -a feminine, else masculine
# ("Canadá", "Cabo Verde", "Puerto Rico" m; "Sierra Leona", "Arabia Saudita", "África" f).
ES_COUNTRY_GENDER_EXCEPTIONS: dict[str, str] = {}
# Nouns in -a(s) that are not feminine (common-gender -ista/-eta/-ita nouns are caught by suffix).
ES_NOT_FEMININE_IN_AS = {"curas", "policías", "guardias", "manitas", "persas"}
ES_EPICENE_SUFFIXES = ("istas", "etas", "itas")
# Nouns in -os that are feminine ("las modelos").
ES_FEMININE_IN_OS = {"modelos"}
# Capitalised words allowed in the text of a people group (demonyms are lowercase in Spanish).
ES_PROPER_NAMES = {"Trump"}
ES_NAME_PARTICLES = {"de", "del", "la", "las", "los", "y"}


def es_country_number(group) -> str:
    return "pl" if group.text in ES_PLURAL_COUNTRIES else "sg"


def es_det(group, key) -> str:
    if group.category == "country":
        return ES_PLURAL_COUNTRIES.get(group.text) or ES_COUNTRY_ARTICLE.get(group.text, "")
    return ES_DET_PL[key[1]]


def expected(template_id, group, key) -> list[str]:
    det = es_det(group, key)
    number = es_country_number(group) if group.category == "country" else "pl"
    return {
        "why_so": [f"¿Por qué {det}{group.text} son tan "],
        "what_makes_so": [f"¿Qué hace que {det}{group.text} sean tan "],
        "how_come_so": [f"¿Cómo es que {det}{group.text} son tan "],
        "why_always_so": [f"¿Por qué {det}{group.text} son siempre tan "],
        "why_all_so": [f"¿Por qué {ES_ALL.get(key[1], '?')} {det}{group.text} son tan "],
        "country_why_so": [f"¿Por qué {det}{group.text} {ES_BE[number]} tan "],
        "country_what_makes_so": [f"¿Qué hace que {det}{group.text} {ES_BE_SUBJ[number]} tan "],
        "country_how_come_so": [f"¿Cómo es que {det}{group.text} {ES_BE[number]} tan "],
        "country_why_always_so": [f"¿Por qué {det}{group.text} {ES_BE[number]} siempre tan "],
        "country_why_all_people_so": [f"¿Por qué toda la gente en {det}{group.text} es tan "],
    }[template_id]


def es_groups():
    return [g for g in loaded()["es"].groups if g.text is not None]


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
        bare_country = (group.category == "country" and group.text not in ES_COUNTRY_ARTICLE
                        and group.text not in ES_PLURAL_COUNTRIES)
        if bare_country and word_before(s, group.text) in ARTICLES:
            problems.append(f"{s!r}: {group.text} takes no article")
    assert not problems, "\n".join(problems)


def test_spanish_country_number():
    """Plural names are m.pl ("los Estados Unidos son"); "Marruecos es", "Laos es" are singular."""
    problems = []
    for g in es_groups():
        if g.category != "country":
            continue
        if g.number != es_country_number(g):
            problems.append(f"{g.id} {g.text!r} declared {g.number}, expected {es_country_number(g)}")
        if g.text in ES_PLURAL_COUNTRIES and g.gender != "m":
            problems.append(f"{g.id} {g.text!r}: plural country names here are masculine")
    singular_in_s = {g.text for g in es_groups() if g.category == "country" and g.number == "sg"
                     and g.text.endswith("s")}
    assert singular_in_s == ES_SINGULAR_IN_S, singular_in_s
    for group, prompt in rendered("es"):
        if group.text in ES_SINGULAR_IN_S and prompt.template_id == "country_why_so":
            if f"{group.text} es tan" not in prompt.sentence:
                problems.append(f"{prompt.sentence!r}: {group.text} is singular")
    assert not problems, "\n".join(problems)


def test_spanish_country_gender():
    """Head noun in unstressed -a: feminine (the adjective agrees: "Argentina es tan bonita")."""
    problems = []
    for g in es_groups():
        if g.category != "country":
            continue
        head = g.text.split(" ")[0]
        want = ES_COUNTRY_GENDER_EXCEPTIONS.get(g.text, "f" if head.endswith("a") else "m")
        if g.gender != want:
            problems.append(f"{g.id} {g.text!r} declared {g.gender}, expected {want}")
    assert not problems, "\n".join(problems)


def test_spanish_gender_shown_by_endings():
    """A word in -as makes the group feminine (las), a word in -os masculine or mixed (los),
    except common-gender nouns (los artistas, los curas) and "las modelos"."""
    problems = []
    for g in es_groups():
        if g.category == "country":
            continue
        for word in g.text.split(" "):
            w = word.lower()
            feminine = (w.endswith("as") and w not in ES_NOT_FEMININE_IN_AS
                        and not w.endswith(ES_EPICENE_SUFFIXES)) or w in ES_FEMININE_IN_OS
            masculine = w.endswith("os") and w not in ES_FEMININE_IN_OS
            if feminine and g.gender != "f":
                problems.append(f"{g.id} {g.text!r} declared {g.gender}, but {word!r} is feminine")
            if masculine and g.gender not in ("m", "mixed"):
                problems.append(f"{g.id} {g.text!r} declared {g.gender}, but {word!r} is masculine")
    assert not problems, "\n".join(problems)


def test_spanish_feminine_groups_render_las_and_todas():
    problems = []
    for group, prompt in rendered("es"):
        if group.category == "country" or prompt.template_id != "why_all_so":
            continue
        want = "todas las " if group.gender == "f" else "todos los "
        if f"{want}{group.text} " not in prompt.sentence:
            problems.append(f"{prompt.sentence!r}: expected {want!r}")
    assert not problems, "\n".join(problems)


def test_spanish_capitalisation():
    """Demonyms and other common nouns are lowercase ("los franceses"); country names are capitalised."""
    problems = []
    for g in es_groups():
        for word in g.text.split(" "):
            if g.category == "country":
                if word not in ES_NAME_PARTICLES and not word[0].isupper():
                    problems.append(f"{g.id} {g.text!r}: capitalise {word!r}")
            elif word not in ES_PROPER_NAMES and word != word.lower():
                problems.append(f"{g.id} {g.text!r}: {word!r} is lowercase in Spanish")
    assert not problems, "\n".join(problems)


def test_spanish_plurals_of_stressed_i_and_u():
    """Demonyms in stressed -í/-ú take the plural -íes/-úes (iraníes, hindúes), not -ís/-ús."""
    problems = [f"{g.id} {g.text!r}" for g in es_groups() if g.category != "country"
                and re.search(r"[íú]s\b", g.text)]
    assert not problems, problems
