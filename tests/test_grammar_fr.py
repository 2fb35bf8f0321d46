"""French prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

Pronouns ils/elles/il/elle, "tous/toutes", les/le/la and the elided l', au/en/aux.
"""

from __future__ import annotations

import re

from grammar_common import MASK, loaded, rendered

ENDING = MASK + " ?"
ARTICLES = {"le", "la", "les", "l'", "au", "aux"}

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


def expected(template_id, group, key) -> list[str]:
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


def test_french_elision():
    """No "le Iran", "la Inde", "au Iran", "que il": elide or use "en" before a vowel."""
    bad = re.compile(r"\b(le|la|au|que|de) [aeiouyàâéèêîôûœAEIOUYÀÂÉÈÊÎÔÛŒ]", re.IGNORECASE)
    problems = [p.sentence for _, p in rendered("fr") if bad.search(p.sentence)]
    assert not problems, problems


def test_french_keeps_every_country_case():
    """The agreement table above is exercised by an elided, an "en" and a plural country."""
    countries = [g for g in loaded()["fr"].groups if g.category == "country"]
    assert any(g.forms.get("det") == "l'" for g in countries), "no elided country (l'Allemagne)"
    assert any(g.gender == "m" and g.forms.get("in") == "en " for g in countries), "no 'en Iran'"
    assert any(g.number == "pl" for g in countries), "no plural country (les États-Unis)"
