"""Greek prompt grammar: expected forms for every template (see ``tests/grammar_common.py``).

οι/τα, τους/τις/τα, "όλοι/όλες/όλα", the accusative endings and the final-ν rule.
Questions end with the ASCII ";" (XLM-R's normaliser turns U+037E into it).
"""

from __future__ import annotations

from grammar_common import MASK, loaded, rendered, strip_accents

ENDING = MASK + ";"
# Greek people nouns may be neuter whatever their meaning (τα κορίτσια, τα αγόρια).
EXTRA_GENDERS_FOR_PEOPLE = {"n"}
ARTICLES = {
    "ο", "η", "το", "οι", "τα", "τον", "την", "τη", "τους", "τις",
    "στον", "στην", "στη", "στο", "στους", "στις", "στα",
}

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


def expected(template_id, group, key) -> list[str]:
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


def test_greek_question_mark_is_ascii_semicolon():
    problems = [p.sentence for _, p in rendered("el") if "?" in p.sentence or "\u037e" in p.sentence]
    assert not problems, problems


def test_greek_has_every_gender():
    genders = {g.gender for g in loaded()["el"].groups}
    assert {"m", "f", "n", "mixed"} <= genders, f"Greek genders {genders}"


def test_greek_accusative_and_final_nu():
    problems = []
    seen = set()
    for group, prompt in rendered("el"):
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


def test_greek_plurals_in_alpha_are_neuter():
    """A plural whose last word ends in -α is neuter (τα παιδιά), and a neuter plural ends in -α."""
    problems = []
    for g in loaded()["el"].groups:
        if g.text is not None and g.number == "pl":
            neuter_form = strip_accents(g.text.split(" ")[-1]).endswith("α")
            if neuter_form != (g.gender == "n"):
                problems.append(f"{g.id} {g.text!r} declared {g.gender}")
    assert not problems, "\n".join(problems)
