"""The group inventory: it covers the study's English groups, and every language carries all of it.

``prompts/choenni2021_map.tsv`` maps each row of the reference list of Choenni et al. (2021)
(``shared/reference/choenni2021_groups.csv``, beside the repository) to one of our group ids.
Every language file must hold the full id set of ``en.yaml`` and express (``text``, not
``missing``) at least ``MIN_GROUPS`` groups, with per-category minimums.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from probing.prompts import CATEGORIES, PROMPTS_DIR, available_languages, load_language, load_languages

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "choenni2021_groups.csv"
MAP = PROMPTS_DIR / "choenni2021_map.tsv"
MAP_COLUMNS = ["category", "group", "group_id"]
MIN_GROUPS = 370
MIN_PER_CATEGORY = {
    "profession": 100, "race": 85, "country": 65, "gender": 22, "lifestyle": 15,
    "sexuality": 10, "age": 10, "religion": 9, "political": 9,
}


def read_map() -> list[dict]:
    with MAP.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        assert reader.fieldnames == MAP_COLUMNS, f"{MAP.name} header {reader.fieldnames}"
        return list(reader)


@pytest.fixture(scope="module")
def reference_rows() -> list[tuple[str, str]]:
    if not REFERENCE.is_file():
        pytest.skip(f"reference list {REFERENCE} not found (it lives beside the repository)")
    with REFERENCE.open(encoding="utf-8", newline="") as f:
        return [(row["category"], row["group"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def english():
    return load_language("en")


def test_every_reference_row_is_mapped_once(reference_rows):
    mapped = [(row["category"], row["group"]) for row in read_map()]
    missing = [row for row in reference_rows if row not in mapped]
    extra = [row for row in mapped if row not in reference_rows]
    doubled = sorted({row for row in mapped if mapped.count(row) > 1})
    assert not missing, f"reference rows absent from {MAP.name}: {missing}"
    assert not extra, f"rows of {MAP.name} that are not in the reference list: {extra}"
    assert not doubled, f"rows mapped twice in {MAP.name}: {doubled}"


def test_mapped_ids_exist_in_english_with_the_same_category(english):
    groups = {g.id: g for g in english.groups}
    problems = []
    for row in read_map():
        group = groups.get(row["group_id"])
        if group is None:
            problems.append(f"{row}: no group {row['group_id']!r} in en.yaml")
        elif group.category != row["category"]:
            problems.append(f"{row}: {row['group_id']!r} has category {group.category!r} in en.yaml")
        elif group.text is None:
            problems.append(f"{row}: {row['group_id']!r} is 'missing' in en.yaml")
    assert not problems, "\n".join(problems)


def test_every_language_has_the_full_id_set(english):
    """Fails until each language file holds every group id of en.yaml (in the same order)."""
    reference = [g.id for g in english.groups]
    problems = []
    for language in available_languages():
        ids = [g.id for g in load_language(language).groups]
        absent = [i for i in reference if i not in ids]
        extra = [i for i in ids if i not in reference]
        if absent or extra:
            problems.append(f"{language}: {len(absent)} ids of en.yaml absent ({', '.join(absent[:10])}"
                            f"{', ...' if len(absent) > 10 else ''}), {len(extra)} extra {extra[:10]}")
        elif ids != reference:
            problems.append(f"{language}: ids are not in the order of en.yaml")
    assert not problems, "\n".join(problems)


def test_group_counts_of_every_complete_language(english):
    """At least MIN_GROUPS expressed groups, and the per-category minimums, in every language whose
    file has the full id set (the test above fails for the others)."""
    reference = {g.id for g in english.groups}
    complete = [lang for lang in available_languages()
                if {g.id for g in load_language(lang).groups} == reference]
    assert "en" in complete
    problems = []
    for language, prompts in load_languages(complete).items():
        expressed = [g for g in prompts.groups if g.text is not None]
        if len(expressed) < MIN_GROUPS:
            problems.append(f"{language}: {len(expressed)} groups with a text, need {MIN_GROUPS}")
        for category in CATEGORIES:
            n = sum(g.category == category for g in expressed)
            if n < MIN_PER_CATEGORY[category]:
                problems.append(f"{language}: {n} {category} groups, need {MIN_PER_CATEGORY[category]}")
    assert not problems, "\n".join(problems)
