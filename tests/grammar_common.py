"""Shared pieces of the prompt grammar tests (``tests/test_prompt_grammar.py`` and one
``tests/test_grammar_<language>.py`` per language).

A language module defines, independently of the ``agreement`` tables of its YAML file:

- ``ENDING``: how a rendered question ends (the mask is the last word, right before the mark);
- ``ARTICLES``: article-like words that must never appear twice in a row ("les les");
- ``expected(template_id, group, key) -> list[str]``: fragments the rendered sentence must
  contain, written from the group's text and its agreement key (see :func:`key_of`);

and any test of its own (elision, contractions, cases...).
"""

from __future__ import annotations

import importlib
import unicodedata
from functools import lru_cache

from probing.prompts import build_prompts, load_languages

MASK = "<mask>"
GROUP_TEMPLATES = {"why_so", "what_makes_so", "how_come_so", "why_always_so", "why_all_so"}
COUNTRY_TEMPLATES = {
    "country_why_so", "country_what_makes_so", "country_how_come_so",
    "country_why_always_so", "country_why_all_people_so",
}


@lru_cache(maxsize=None)
def loaded():
    """{language: LanguagePrompts} of every shipped language (loaded once per session)."""
    return load_languages()


@lru_cache(maxsize=None)
def rendered(language: str):
    """[(Group, Prompt), ...] for every group and template of ``language``."""
    prompts = loaded()[language]
    groups = {g.id: g for g in prompts.groups}
    return [(groups[p.group_id], p) for p in build_prompts(prompts, mask_token=MASK)]


def language_module(language: str):
    """The ``tests/test_grammar_<language>.py`` module, or None if the language has none."""
    try:
        return importlib.import_module(f"test_grammar_{language}")
    except ModuleNotFoundError:
        return None


def key_of(prompts, group) -> tuple[str, str]:
    """(gender, "gender.number") that the group's agreeing words take (mixed -> mixed_agrees_as)."""
    gender = prompts.mixed_agrees_as if group.gender == "mixed" else group.gender
    return gender, f"{gender}.{group.number}"


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def word_before(sentence: str, text: str) -> str:
    """The word right before ``text`` in ``sentence`` ("" at the start)."""
    head = sentence[: sentence.index(text)].rstrip()
    return head.split(" ")[-1].lstrip("¿").lower() if head else ""
