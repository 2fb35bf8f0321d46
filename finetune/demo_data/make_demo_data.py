"""Write the small, synthetic multi-task demo data in this folder (deterministic; rerun to regenerate).

    python finetune/demo_data/make_demo_data.py

* ``multitask.csv``: short sentences in English, French, Spanish and Greek, each with a
  toxicity label (0/1), a sentiment (negative/neutral/positive) and a set of emotions
  (``anger|disgust``, or ``none``), plus a ``language`` column. About a quarter of each label
  column is left empty (missing), never all three for one row.
* ``entities.jsonl``: the same four languages, one sentence per line as ``tokens`` with BIO
  ``ner_tags`` (PER, LOC, ORG) and ``language``.

The sentences were written for this project; they are not taken from any corpus. They exist so
the multi-task pipeline can run and be tested offline; they are far too few and too regular for
any conclusion.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 13
MISSING_SHARE = {"toxic": 0.25, "sentiment": 0.25, "emotions": 0.25}

# (sentence, toxic, sentiment, emotions); the same 18 situations in every language.
LABELS = [
    (0, "positive", "joy"), (0, "positive", "joy|surprise"), (0, "positive", "joy"), (0, "positive", "joy"),
    (0, "negative", "sadness"), (0, "negative", "sadness"), (0, "negative", "fear"), (0, "negative", "fear"),
    (0, "negative", "anger"), (0, "negative", "disgust"), (0, "neutral", "none"), (0, "neutral", "none"),
    (0, "neutral", "none"), (1, "negative", "anger|disgust"), (1, "negative", "anger"),
    (1, "negative", "anger|disgust"), (1, "negative", "anger|disgust"), (0, "positive", "joy|surprise"),
]
SENTENCES = {
    "en": [
        "I love this beautiful morning, it makes me so happy.",
        "What a wonderful surprise, thank you all!",
        "The concert last night was fantastic.",
        "My friends cooked a delicious dinner for me.",
        "I miss my grandmother, the house feels empty without her.",
        "The film had such a sad ending that I cried.",
        "I am afraid of walking home alone in the dark.",
        "The storm outside scares me tonight.",
        "I can't believe they cancelled my flight again, this is outrageous.",
        "The food in this place smelled rotten and disgusting.",
        "The train leaves at eight o'clock from platform two.",
        "The meeting has been moved to Thursday afternoon.",
        "The library opens at nine every weekday.",
        "You are a stupid idiot and nobody wants you here.",
        "Shut up, you pathetic loser.",
        "Only a brainless moron would write garbage like this.",
        "Get lost, you worthless clown, I am sick of you.",
        "Wow, I did not expect the exam to be so easy!",
    ],
    "fr": [
        "J'adore cette belle matinée, elle me rend si heureux.",
        "Quelle merveilleuse surprise, merci à tous !",
        "Le concert d'hier soir était fantastique.",
        "Mes amis m'ont préparé un dîner délicieux.",
        "Ma grand-mère me manque, la maison semble vide sans elle.",
        "Le film avait une fin si triste que j'ai pleuré.",
        "J'ai peur de rentrer seul à la maison dans le noir.",
        "La tempête dehors me fait peur ce soir.",
        "Je n'arrive pas à croire qu'ils ont encore annulé mon vol, c'est scandaleux.",
        "La nourriture de cet endroit sentait le pourri, c'était dégoûtant.",
        "Le train part à huit heures du quai numéro deux.",
        "La réunion a été déplacée à jeudi après-midi.",
        "La bibliothèque ouvre à neuf heures en semaine.",
        "Tu es un idiot stupide et personne ne veut de toi ici.",
        "Tais-toi, pauvre minable.",
        "Seul un crétin sans cervelle pourrait écrire des déchets pareils.",
        "Dégage, espèce de clown inutile, j'en ai marre de toi.",
        "Waouh, je ne m'attendais pas à ce que l'examen soit si facile !",
    ],
    "es": [
        "Me encanta esta hermosa mañana, me hace muy feliz.",
        "¡Qué sorpresa tan maravillosa, gracias a todos!",
        "El concierto de anoche fue fantástico.",
        "Mis amigos me prepararon una cena deliciosa.",
        "Echo de menos a mi abuela, la casa se siente vacía sin ella.",
        "La película tuvo un final tan triste que lloré.",
        "Tengo miedo de volver a casa solo en la oscuridad.",
        "La tormenta de afuera me asusta esta noche.",
        "No puedo creer que hayan cancelado mi vuelo otra vez, es indignante.",
        "La comida de este sitio olía a podrido y era asquerosa.",
        "El tren sale a las ocho desde el andén dos.",
        "La reunión se ha trasladado al jueves por la tarde.",
        "La biblioteca abre a las nueve entre semana.",
        "Eres un idiota estúpido y nadie te quiere aquí.",
        "Cállate, perdedor patético.",
        "Solo un imbécil sin cerebro escribiría basura como esta.",
        "Lárgate, payaso inútil, estoy harto de ti.",
        "¡Vaya, no esperaba que el examen fuera tan fácil!",
    ],
    "el": [
        "Λατρεύω αυτό το όμορφο πρωινό, με κάνει τόσο χαρούμενο.",
        "Τι υπέροχη έκπληξη, ευχαριστώ όλους σας!",
        "Η συναυλία χθες το βράδυ ήταν φανταστική.",
        "Οι φίλοι μου μαγείρεψαν ένα νόστιμο δείπνο για μένα.",
        "Μου λείπει η γιαγιά μου, το σπίτι μοιάζει άδειο χωρίς αυτήν.",
        "Η ταινία είχε τόσο λυπητερό τέλος που έκλαψα.",
        "Φοβάμαι να γυρίσω σπίτι μόνος μου στο σκοτάδι.",
        "Η καταιγίδα έξω με τρομάζει απόψε.",
        "Δεν το πιστεύω ότι ακύρωσαν ξανά την πτήση μου, είναι εξοργιστικό.",
        "Το φαγητό σε αυτό το μέρος μύριζε χαλασμένο και ήταν αηδιαστικό.",
        "Το τρένο φεύγει στις οκτώ από την αποβάθρα δύο.",
        "Η συνάντηση μεταφέρθηκε την Πέμπτη το απόγευμα.",
        "Η βιβλιοθήκη ανοίγει στις εννέα τις καθημερινές.",
        "Είσαι ένας ηλίθιος βλάκας και κανείς δεν σε θέλει εδώ.",
        "Σκάσε, αξιολύπητε χαμένε.",
        "Μόνο ένας άμυαλος κρετίνος θα έγραφε τέτοια σκουπίδια.",
        "Χάσου, άχρηστε κλόουν, σε βαρέθηκα.",
        "Ουάου, δεν περίμενα η εξέταση να είναι τόσο εύκολη!",
    ],
}
# Three framings per sentence, so each language has 54 rows.
FRAMES = {
    "en": ["{s}", "Note: {s}", "{s} Just saying."],
    "fr": ["{s}", "Remarque : {s}", "{s} Je dis ça comme ça."],
    "es": ["{s}", "Nota: {s}", "{s} Solo digo."],
    "el": ["{s}", "Σημείωση: {s}", "{s} Απλώς λέω."],
}

# Entities: (template words with slots, fillers). Slots: {PER}, {LOC}, {ORG}; a filler is
# (leading words tagged O, entity words).
PEOPLE = {
    "en": ["Anna Smith", "John Baker", "Maria Lopez"],
    "fr": ["Claire Dubois", "Jean Martin", "Sophie Laurent"],
    "es": ["Lucía García", "Carlos Pérez", "Ana Torres"],
    "el": ["Μαρία Παπαδοπούλου", "Γιώργος Νικολάου", "Ελένη Γεωργίου"],
}
PLACES = {  # (words before the place in the "visited" template, place, words before it in "in X")
    "en": [([], "London", ["in"]), ([], "Paris", ["in"]), ([], "New York", ["in"]), ([], "Athens", ["in"])],
    "fr": [([], "Londres", ["à"]), ([], "Paris", ["à"]), ([], "Madrid", ["à"]), ([], "Athènes", ["à"])],
    "es": [([], "Londres", ["en"]), ([], "París", ["en"]), ([], "Madrid", ["en"]), ([], "Atenas", ["en"])],
    "el": [(["το"], "Λονδίνο", ["στο"]), (["το"], "Παρίσι", ["στο"]), (["τη"], "Μαδρίτη", ["στη"]),
           (["την"], "Αθήνα", ["στην"])],
}
ORGANISATIONS = {  # (words before, organisation)
    "en": [(["the"], "Red Cross"), (["the"], "United Nations"), ([], "Acme Corporation")],
    "fr": [(["la"], "Croix-Rouge"), (["les"], "Nations Unies"), (["la"], "Banque de France")],
    "es": [(["la"], "Cruz Roja"), (["las"], "Naciones Unidas"), (["el"], "Banco de España")],
    "el": [(["στον"], "Ερυθρό Σταυρό"), (["στον"], "ΟΗΕ"), (["στην"], "Τράπεζα της Ελλάδος")],
}
TEMPLATES = {
    "en": ["{PER} visited {LOC} last week .", "{PER} works for {ORG} {IN} .", "{PER} moved to {LOC} in May ."],
    "fr": ["{PER} a visité {LOC} la semaine dernière .", "{PER} travaille pour {ORG} {IN} .",
           "{PER} a déménagé {IN} en mai ."],
    "es": ["{PER} visitó {LOC} la semana pasada .", "{PER} trabaja para {ORG} {IN} .",
           "{PER} se mudó a {LOC} en mayo ."],
    "el": ["{PER} επισκέφθηκε {LOC} την περασμένη εβδομάδα .", "{PER} εργάζεται {ORG} {IN} .",
           "{PER} μετακόμισε {IN} τον Μάιο ."],
}


def entity_rows(language: str, rng: random.Random) -> list[dict]:
    rows = []
    for template in TEMPLATES[language]:
        for person in PEOPLE[language]:
            for before, place, before_in in PLACES[language]:
                tokens, tags = [], []
                org_before, org = rng.choice(ORGANISATIONS[language])
                for word in template.split():
                    if word == "{PER}":
                        parts = person.split()
                        tokens += parts
                        tags += ["B-PER"] + ["I-PER"] * (len(parts) - 1)
                    elif word in ("{LOC}", "{IN}"):
                        lead = before if word == "{LOC}" else before_in
                        parts = place.split()
                        tokens += lead + parts
                        tags += ["O"] * len(lead) + ["B-LOC"] + ["I-LOC"] * (len(parts) - 1)
                    elif word == "{ORG}":
                        parts = org.split()
                        tokens += org_before + parts
                        tags += ["O"] * len(org_before) + ["B-ORG"] + ["I-ORG"] * (len(parts) - 1)
                    else:
                        tokens.append(word)
                        tags.append("O")
                rows.append({"tokens": tokens, "ner_tags": tags, "language": language})
    rng.shuffle(rows)
    return rows[:24]


def sentence_rows(rng: random.Random) -> list[dict]:
    rows = []
    for language, sentences in SENTENCES.items():
        for frame in FRAMES[language]:
            for sentence, (toxic, sentiment, emotions) in zip(sentences, LABELS):
                row = {"text": frame.format(s=sentence), "language": language, "toxic": str(toxic),
                       "sentiment": sentiment, "emotions": emotions}
                columns = [c for c in MISSING_SHARE if rng.random() < MISSING_SHARE[c]]
                if len(columns) == len(MISSING_SHARE):
                    columns = columns[:-1]
                for column in columns:
                    row[column] = ""
                rows.append(row)
    rng.shuffle(rows)
    return rows


def render() -> dict[str, str]:
    """File name -> content."""
    rng = random.Random(SEED)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["text", "language", "toxic", "sentiment", "emotions"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(sentence_rows(rng))
    entities = [row for language in SENTENCES for row in entity_rows(language, rng)]
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in entities)
    return {"multitask.csv": out.getvalue(), "entities.jsonl": lines}


def main() -> None:
    for name, content in render().items():
        (HERE / name).write_text(content, encoding="utf-8")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
