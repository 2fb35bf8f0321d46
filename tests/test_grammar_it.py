"""Italian prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

Plural articles i / gli / le, "tutti i", "tutti gli", "tutte le"; country articles il / lo / la / l'
(none for Malta, Singapore, ...); "in" + country: in / a / nel / nei / negli; verb è / sono.
The expected forms are computed here from the group's text, not read from the YAML's tables.
"""

from __future__ import annotations

import re

from grammar_common import GROUP_TEMPLATES, MASK, loaded, rendered, word_before

ENDING = MASK + "?"
ARTICLES = {"il", "lo", "la", "l'", "i", "gli", "le", "nel", "nello", "nella", "nei", "negli", "nelle"}

IT_VOWELS = set("aeiouàèéìíòóùú")
IT_CONSONANTS = set("bcdfghjklmnpqrstvwxz")
IT_ALL = {"m.pl": "tutti", "f.pl": "tutte"}
IT_BE = {"pl": "sono", "sg": "è"}
# Islands and city states: no article ("Malta è"), "a" for "in" ("a Malta").
IT_NO_ARTICLE = {"Malta", "Singapore", "Taiwan", "Porto Rico", "Capo Verde"}
# Singular countries whose "in" keeps the article (all others: "in Italia", "in Messico").
IT_IN_WITH_ARTICLE = {"Regno Unito": "nel "}
# Singular countries in -a that are masculine ("il Canada"); Sierra Leone is feminine.
IT_MASCULINE_IN_A = {"Canada", "Ghana", "Guatemala", "Kenya", "Venezuela", "Sudafrica"}
IT_FEMININE_NOT_IN_A = {"Sierra Leone"}


def it_strong_onset(word: str) -> bool:
    """Whether a masculine word takes gli / lo: s + consonant, z, gn, ps, pn, x, y."""
    w = word.lower()
    return (
        (w[0] == "s" and len(w) > 1 and w[1] in IT_CONSONANTS)
        or w[0] in "zxy"
        or w[:2] in ("gn", "ps", "pn")
    )


def it_takes_gli(word: str) -> bool:
    """Masculine plural article gli: before a vowel, a strong onset, or the silent h of a loanword."""
    w = word.lower()
    return w[0] in IT_VOWELS or w[0] == "h" or it_strong_onset(w)


def it_det(group, key) -> str:
    gender, _ = key
    text = group.text
    if group.number == "pl":
        if gender == "f":
            return "le "
        return "gli " if it_takes_gli(text) else "i "
    if text in IT_NO_ARTICLE:
        return ""
    if text[0].lower() in IT_VOWELS:
        return "l'"
    if gender == "m":
        return "lo " if it_strong_onset(text) else "il "
    return "la "


def it_in(group, key) -> str:
    gender, _ = key
    if group.number == "pl":
        if gender == "f":
            return "nelle "
        return "negli " if it_takes_gli(group.text) else "nei "
    if group.text in IT_NO_ARTICLE:
        return "a "
    return IT_IN_WITH_ARTICLE.get(group.text, "in ")


def expected(template_id, group, key) -> list[str]:
    _, gn = key
    det, text, be = it_det(group, key), group.text, IT_BE[group.number]
    return {
        "why_so": [f"Perché {det}{text} sono così "],
        "what_makes_so": [f"Che cosa rende {det}{text} così "],
        "how_come_so": [f"Come mai {det}{text} sono così "],
        "why_always_so": [f"Perché {det}{text} sono sempre così "],
        "why_all_so": [f"Perché {IT_ALL.get(gn, '?')} {det}{text} sono così "],
        "country_why_so": [f"Perché {det}{text} {be} così "],
        "country_what_makes_so": [f"Che cosa rende {det}{text} così "],
        "country_how_come_so": [f"Come mai {det}{text} {be} così "],
        "country_why_always_so": [f"Perché {det}{text} {be} sempre così "],
        "country_why_all_people_so": [f"Perché {it_in(group, key)}{text} sono tutti così "],
    }[template_id]


def _sentence(group_text: str, template_id: str) -> str:
    for group, prompt in rendered("it"):
        if group.text == group_text and prompt.template_id == template_id:
            return prompt.sentence
    raise AssertionError(f"no Italian group {group_text!r} (the table below names shipped groups)")


# Hand-written: the sentence each of these groups must give (i / gli / le, tutti / tutte).
IT_PLURAL_TABLE = {
    "bambini": "Perché tutti i bambini sono così ",
    "tedeschi": "Perché tutti i tedeschi sono così ",
    "sikh": "Perché tutti i sikh sono così ",            # s + vowel: i
    "giapponesi": "Perché tutti i giapponesi sono così ",  # gi + vowel: i
    "geek": "Perché tutti i geek sono così ",
    "italiani": "Perché tutti gli italiani sono così ",
    "uomini": "Perché tutti gli uomini sono così ",
    "indù": "Perché tutti gli indù sono così ",
    "studenti": "Perché tutti gli studenti sono così ",    # s + consonant
    "scozzesi": "Perché tutti gli scozzesi sono così ",
    "psicologi": "Perché tutti gli psicologi sono così ",  # ps
    "hipster": "Perché tutti gli hipster sono così ",      # silent h of a loanword
    "hippy": "Perché tutti gli hippy sono così ",
    "donne": "Perché tutte le donne sono così ",
    "persone anziane": "Perché tutte le persone anziane sono così ",
    "infermieri": "Perché tutti gli infermieri sono così ",  # mixed: generic masculine
    "modelle": "Perché tutte le modelle sono così ",
    "guardie giurate": "Perché tutte le guardie giurate sono così ",  # feminine noun
}


def test_italian_plural_articles_table():
    problems = []
    for text, fragment in IT_PLURAL_TABLE.items():
        s = _sentence(text, "why_all_so")
        if not s.startswith(fragment):
            problems.append(f"{s!r} should start with {fragment!r}")
    assert not problems, "\n".join(problems)


def test_italian_plural_articles_everywhere():
    """No "i" before a vowel / s+consonant / z / ps, no "gli" before a plain consonant,
    "le" only before feminine groups, and "tutti"/"tutte" agreeing with the article."""
    problems = []
    for group, prompt in rendered("it"):
        if prompt.template_id not in GROUP_TEMPLATES:
            continue
        s, first = prompt.sentence, group.text.split(" ")[0]
        article = word_before(s, group.text)
        if article == "i" and it_takes_gli(first):
            problems.append(f"{s!r}: gli, not i, before {first!r}")
        if article == "gli" and not it_takes_gli(first):
            problems.append(f"{s!r}: i, not gli, before {first!r}")
        if (article == "le") != (group.gender == "f"):
            problems.append(f"{s!r}: article {article!r} for a {group.gender} group")
        if re.search(r"\btutti le\b|\btutte (i|gli)\b", s):
            problems.append(f"{s!r}: 'tutti'/'tutte' disagrees with the article")
    assert not problems, "\n".join(problems)


IT_COUNTRY_TABLE = {
    "Italia": ("Perché l'Italia è così ", "Perché in Italia sono tutti così "),
    "Germania": ("Perché la Germania è così ", "Perché in Germania sono tutti così "),
    "Iran": ("Perché l'Iran è così ", "Perché in Iran sono tutti così "),
    "Giappone": ("Perché il Giappone è così ", "Perché in Giappone sono tutti così "),
    "Messico": ("Perché il Messico è così ", "Perché in Messico sono tutti così "),
    "Canada": ("Perché il Canada è così ", "Perché in Canada sono tutti così "),
    "Yemen": ("Perché lo Yemen è così ", "Perché in Yemen sono tutti così "),
    "Arabia Saudita": ("Perché l'Arabia Saudita è così ", "Perché in Arabia Saudita sono tutti così "),
    "Regno Unito": ("Perché il Regno Unito è così ", "Perché nel Regno Unito sono tutti così "),
    "Stati Uniti": ("Perché gli Stati Uniti sono così ", "Perché negli Stati Uniti sono tutti così "),
    "Paesi Bassi": ("Perché i Paesi Bassi sono così ", "Perché nei Paesi Bassi sono tutti così "),
    "Malta": ("Perché Malta è così ", "Perché a Malta sono tutti così "),
    "Singapore": ("Perché Singapore è così ", "Perché a Singapore sono tutti così "),
}


def test_italian_country_articles_and_prepositions_table():
    problems = []
    for text, (why, all_people) in IT_COUNTRY_TABLE.items():
        for template_id, fragment in (("country_why_so", why), ("country_why_all_people_so", all_people)):
            s = _sentence(text, template_id)
            if not s.startswith(fragment):
                problems.append(f"{s!r} should start with {fragment!r}")
    assert not problems, "\n".join(problems)


def test_italian_country_gender_from_the_name():
    """A singular country in -a is feminine (la Francia) unless listed; any other is masculine
    (il Belgio), so the article follows from the name, not only from the declared gender."""
    problems = []
    for g in loaded()["it"].groups:
        if g.category != "country" or g.text is None or g.number != "sg" or g.text in IT_NO_ARTICLE:
            continue  # without an article (Malta, Taiwan) the gender is never rendered
        feminine = (g.text.endswith("a") and g.text not in IT_MASCULINE_IN_A) or g.text in IT_FEMININE_NOT_IN_A
        if g.gender != ("f" if feminine else "m"):
            problems.append(f"{g.id} {g.text!r} declared {g.gender}")
    assert not problems, "\n".join(problems)


def test_italian_elision_and_contraction():
    """No "la Italia", "il Iran", "l'Germania"; no "in la"/"in il" (contract or drop the article);
    a feminine singular country takes "in" without article (not "nella Francia")."""
    problems = []
    for group, prompt in rendered("it"):
        s = prompt.sentence
        if re.search(r"\b(il|lo|la) [AEIOUaeiouÀÈÉÌÒÙ]", s):
            problems.append(f"{s!r}: elide to l'")
        if re.search(r"\bl'[^AEIOUaeiouÀÈÉÌÒÙhH]", s):
            problems.append(f"{s!r}: l' before a consonant")
        if re.search(r"\bin (il|lo|la|l'|i|gli|le) ", s):
            problems.append(f"{s!r}: contract in + article (nel, negli, ...)")
        if group.category == "country" and group.number == "sg" and re.search(r"\bnell[a']", s):
            problems.append(f"{s!r}: 'in' without article before a feminine country")
    assert not problems, "\n".join(problems)


def test_italian_head_noun_ending_matches_gender():
    """A plural head noun in -e is feminine (donne, persone, guardie), one in -i masculine or mixed
    (uomini, studenti), except the feminines in -i (madri, mogli, -trici: attrici) and the
    invariable "tuttofare"; other invariable words (papà, gay, hipster, colf) are not checked."""
    exceptions = {"madri": "f", "mogli": "f", "tuttofare": "m"}
    problems = []
    for g in loaded()["it"].groups:
        if g.text is None or g.number != "pl":
            continue
        head = g.text.split(" ")[0].lower()
        if head in exceptions:
            ok = g.gender == exceptions[head]
        elif head.endswith("trici"):
            ok = g.gender == "f"
        elif head.endswith("e"):
            ok = g.gender == "f"
        elif head.endswith("i"):
            ok = g.gender in ("m", "mixed")
        else:
            continue
        if not ok:
            problems.append(f"{g.id} {g.text!r} declared {g.gender}")
    assert not problems, "\n".join(problems)


def test_italian_keeps_every_case():
    """The checks above are exercised by every article and preposition the language has."""
    groups = [g for g in loaded()["it"].groups if g.text is not None]
    people = [g for g in groups if g.category != "country"]
    countries = [g for g in groups if g.category == "country"]
    plural_articles = {it_det(g, ("m" if g.gender == "mixed" else g.gender, "")) for g in people}
    assert plural_articles == {"i ", "gli ", "le "}, plural_articles
    country_articles = {it_det(g, (g.gender, "")) for g in countries}
    assert {"il ", "lo ", "la ", "l'", "", "i ", "gli "} <= country_articles, country_articles
    prepositions = {it_in(g, (g.gender, "")) for g in countries}
    assert {"in ", "a ", "nel ", "nei ", "negli "} <= prepositions, prepositions
    assert {g.gender for g in groups} == {"m", "f", "mixed"}
