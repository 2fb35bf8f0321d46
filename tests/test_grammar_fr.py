"""French prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

Pronouns ils/elles/il/elle, "tous/toutes", les/le/la and the elided l' (vowel, h muet, but not
consonantal y: "le Yémen"), countries named without an article (Malte, Singapour, Taïwan,
Porto Rico, Oman), "qu'" before such a vowel-initial country, and au/en/aux/à for "in".
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
FR_VOWELS = set("aeiouyàâäéèêëîïôöùûüœæ")
# Initial h: elides when mute ("l'Hindoustan"), not when aspirated ("le Honduras", "la Hongrie").
# A country or singular group starting with an h must be listed in one of the two.
FR_H_MUET = {"haïti", "hindoustan"}
FR_H_ASPIRE = {"honduras", "hongrie", "hollande"}
# Countries named without an article: islands and city states, and Oman ("Oman", "en Oman").
FR_NO_ARTICLE = {"Malte", "Singapour", "Taïwan", "Porto Rico", "Oman"}


def fr_starts_with_vowel(text: str) -> bool:
    """True if the word elides what comes before it (l', qu', en)."""
    first, word = text[0].lower(), text.split(" ")[0].lower()
    if first == "h":
        assert word in FR_H_MUET | FR_H_ASPIRE, f"add {word!r} to FR_H_MUET or FR_H_ASPIRE"
        return word in FR_H_MUET
    if first == "y" and len(text) > 1 and text[1].lower() in FR_VOWELS:
        return False  # consonantal y: le Yémen, le yaourt
    return first in FR_VOWELS


def fr_det(group, key) -> str:
    gender, _ = key
    if group.number == "pl":
        return "les "
    if group.text in FR_NO_ARTICLE:
        return ""
    if fr_starts_with_vowel(group.text):
        return "l'"
    return {"m": "le ", "f": "la "}[gender]


def fr_in(group, key) -> str:
    gender, _ = key
    if group.number == "pl":
        return "aux "
    if group.text in FR_NO_ARTICLE:
        return "en " if fr_starts_with_vowel(group.text) else "à "
    if gender == "f" or fr_starts_with_vowel(group.text):
        return "en "
    return "au "


def fr_que(group, key) -> str:
    """"que" before the article, "qu'" right before a vowel (no article: "qu'Oman")."""
    det = fr_det(group, key)
    return "qu'" if det == "" and fr_starts_with_vowel(group.text) else "que "


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
        "country_how_come_so": [
            f"Comment se fait-il {fr_que(group, key)}{det}{group.text} {FR_BE_SUBJ[number]} si "
        ],
        "country_why_always_so": [f"{det}{group.text} {FR_BE[number]}-{pron} toujours si "],
        "country_why_all_people_so": [f" {fr_in(group, key)}{group.text} sont-ils si "],
    }[template_id]


def test_french_elision():
    """No "le Iran", "la Inde", "au Iran", "que Oman", "à le": elide, contract or use "en"."""
    bad = re.compile(
        r"\b(le|la|au|que|de) [aeiouàâéèêîôûœAEIOUÀÂÉÈÊÎÔÛŒ]|\b(à|de) les? |\bl'[^aeiouyhàâéèêîïôûœ]",
        re.IGNORECASE,
    )
    problems = [p.sentence for _, p in rendered("fr") if bad.search(p.sentence)]
    assert not problems, problems


# Hand-written forms (article + name, "in" + name), a check of the rules above themselves.
COUNTRY_PHRASES = {
    "united_states": ("les États-Unis", "aux États-Unis"),
    "united_kingdom": ("le Royaume-Uni", "au Royaume-Uni"),
    "germany": ("l'Allemagne", "en Allemagne"),
    "iran": ("l'Iran", "en Iran"),
    "afghanistan": ("l'Afghanistan", "en Afghanistan"),
    "ecuador": ("l'Équateur", "en Équateur"),
    "iraq": ("l'Irak", "en Irak"),
    "cape_verde": ("le Cap-Vert", "au Cap-Vert"),
    "yemen": ("le Yémen", "au Yémen"),
    "sierra_leone": ("la Sierra Leone", "en Sierra Leone"),
    "south_africa": ("l'Afrique du Sud", "en Afrique du Sud"),
    "korea": ("la Corée", "en Corée"),
    "malta": ("Malte", "à Malte"),
    "singapore": ("Singapour", "à Singapour"),
    "taiwan": ("Taïwan", "à Taïwan"),
    "puerto_rico": ("Porto Rico", "à Porto Rico"),
    "oman": ("Oman", "en Oman"),
}


def test_french_country_phrases():
    sentences = {}
    for group, prompt in rendered("fr"):
        sentences.setdefault(group.id, []).append(prompt.sentence)
    problems = []
    for gid, (with_det, with_in) in COUNTRY_PHRASES.items():
        joined = " | ".join(sentences[gid])
        if f"rend {with_det} si" not in joined:
            problems.append(f"{gid}: no 'rend {with_det} si' in {joined}")
        if f"les gens {with_in} sont-ils" not in joined:
            problems.append(f"{gid}: no 'les gens {with_in}' in {joined}")
    assert "Comment se fait-il qu'Oman soit si" in " ".join(sentences["oman"])
    assert not problems, "\n".join(problems)


# Country gender: a singular name ending in -e is feminine, others masculine, except these.
FR_COUNTRY_GENDER_EXCEPTIONS = {"Mexique": "m", "Afrique du Sud": "f", "Cambodge": "m", "Mozambique": "m"}


def test_french_country_gender():
    """The declared gender of each country, checked against the -e rule (plural: -es is f)."""
    problems = []
    for group in loaded()["fr"].groups:
        if group.category != "country" or group.text is None:
            continue
        if group.text in FR_COUNTRY_GENDER_EXCEPTIONS:
            want = FR_COUNTRY_GENDER_EXCEPTIONS[group.text]
        elif group.number == "pl":
            want = "f" if group.text.endswith("es") else "m"
        else:
            want = "f" if group.text.endswith("e") else "m"
        if group.gender != want:
            problems.append(f"{group.id} {group.text!r}: declared {group.gender}, expected {want}")
    assert not problems, "\n".join(problems)


# Head nouns (first word of a group) of fixed grammatical gender.
FR_FEMININE_HEADS = {
    "femmes", "filles", "mères", "dames", "personnes", "sœurs", "épouses", "mamans", "mariées",
    "belles-mères", "grands-mères", "petites", "écolières", "lesbiennes", "actrices", "infirmières",
    "caissières", "hôtesses", "sages-femmes", "strip-teaseuses", "blondes", "célébrités",
}
FR_FEMININE_ENDINGS = ("ennes", "aises", "oises", "ières", "rices", "euses", "esses")
FR_FEMININE_BY_CHOICE = {"féministes", "Latinas"}  # epicene or loan nouns declared f (see README)
FR_MASCULINE_HEADS = {
    "hommes", "pères", "garçons", "messieurs", "frères", "maris", "papas", "fils", "mariés",
    "beaux-pères", "grands-pères", "petits", "écoliers", "mâles", "acteurs", "prêtres", "mannequins",
}


def test_french_group_gender():
    """A group with a feminine head noun is f, one with a masculine head noun is m (not mixed)."""
    problems = []
    for group in loaded()["fr"].groups:
        if group.category == "country" or group.text is None:
            continue
        head = group.text.split(" ")[0]
        feminine = (head in FR_FEMININE_HEADS or head.endswith(FR_FEMININE_ENDINGS)
                    or group.text in FR_FEMININE_BY_CHOICE)
        where = f"{group.id} {group.text!r} declared {group.gender}"
        if feminine and group.gender != "f":
            problems.append(f"{where}: its head noun {head!r} is feminine")
        if head in FR_MASCULINE_HEADS and group.gender != "m":
            problems.append(f"{where}: its head noun {head!r} is masculine")
        if group.gender == "f" and not feminine:
            problems.append(f"{where}: {head!r} is not a known feminine noun")
    assert not problems, "\n".join(problems)


def test_french_keeps_every_country_case():
    """The agreement table above is exercised by every kind of country."""
    countries = [g for g in loaded()["fr"].groups if g.category == "country" and g.text]
    assert any(g.forms.get("det") == "l'" for g in countries), "no elided country (l'Allemagne)"
    assert any(g.gender == "m" and g.forms.get("in") == "en " for g in countries), "no 'en Iran'"
    assert any(g.number == "pl" for g in countries), "no plural country (les États-Unis)"
    assert any(g.forms.get("in") == "à " for g in countries), "no country without article (à Malte)"
    assert any(g.forms.get("que") == "qu'" for g in countries), "no 'qu'Oman'"
    assert any(g.text[0] in "Yy" for g in countries), "no consonantal y (le Yémen)"
