"""Prompt files: templates and social groups per language, their validation and rendering.

One YAML file per language in ``prompts/`` (the format is documented in ``prompts/README.md``).
A template such as ``"Pourquoi {det}{group} sont-{pron} si {mask} ?"`` has exactly one group slot
(``{group}`` or ``{group.<case>}``), exactly one ``{mask}``, and any number of agreement slots
whose form depends on the group's grammatical gender and number.

Command line::

    python -m probing.prompts --check            # validate prompts/, print a JSON summary
    python -m probing.prompts --check other_dir/ # validate another folder
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

CATEGORIES = (
    "religion", "age", "gender", "country", "race",
    "profession", "political", "sexuality", "lifestyle",
)
# Countries are probed with singular templates ("Why is {group} so ...?"), all else with plural.
COUNTRY_CATEGORY = "country"
TEMPLATE_KINDS = {"groups", "countries"}
GENDERS = {"m", "f", "n", "mixed"}
NUMBERS = {"sg", "pl"}
MASK_SLOT = "mask"
GROUP_SLOT = "group"
FILE_KEYS = {"language", "name", "script", "lemmatizer", "version", "mixed_agrees_as", "agreement",
             "templates", "groups"}
TEMPLATE_KEYS = {"id", "applies_to", "text"}
GROUP_KEYS = {"id", "category", "text", "gender", "number", "forms", "cases", "missing", "note"}
SLOT_PATTERN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}")


@dataclass(frozen=True)
class Template:
    id: str
    applies_to: str  # "groups" or "countries"
    text: str
    line: int


@dataclass(frozen=True)
class Group:
    id: str
    category: str
    text: str | None  # None when the language cannot express the group (see ``missing``)
    gender: str | None
    number: str | None
    line: int
    forms: dict = field(default_factory=dict)  # slot -> form, overriding the agreement table
    cases: dict = field(default_factory=dict)  # case name -> form, for {group.<case>}
    missing: str | None = None  # why the language has no natural term for the group

    def surface_forms(self) -> list[str]:
        """Every form of the group's name that a template can render."""
        if self.text is None:
            return []
        return [self.text, *self.cases.values()]


@dataclass(frozen=True)
class LanguagePrompts:
    language: str
    name: str
    script: str
    lemmatizer: str
    version: int
    mixed_agrees_as: str
    agreement: dict
    templates: tuple[Template, ...]
    groups: tuple[Group, ...]
    path: Path
    sha256: str

    def templates_for(self, group: Group) -> list[Template]:
        kind = "countries" if group.category == COUNTRY_CATEGORY else "groups"
        return [t for t in self.templates if t.applies_to == kind]


@dataclass(frozen=True)
class Prompt:
    """One rendered sentence: a group in a template, with its prior (group slot masked too)."""

    language: str
    category: str
    group_id: str
    group: str
    template_id: str
    sentence: str
    prior_sentence: str
    prior_mask_index: int  # which mask of ``prior_sentence`` is the target (0 or 1)


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when present: 5x faster
    """A YAML loader that records each mapping's 1-based line as the key ``__line__``."""


def _construct_mapping_with_line(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_with_line
)


def _strip_lines(value):
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    return value


def available_languages(prompts_dir: Path | str = PROMPTS_DIR) -> list[str]:
    """Language codes with a prompt file (``<code>.yaml``) in ``prompts_dir``, sorted."""
    prompts_dir = Path(prompts_dir)
    if not prompts_dir.is_dir():
        raise UserError(f"prompt folder {prompts_dir} does not exist; pass an existing folder")
    return sorted(p.stem for p in prompts_dir.glob("*.yaml") if not p.stem.startswith("_"))


def _require(mapping: dict, key: str, path: Path, what: str):
    if key not in mapping or mapping[key] in (None, ""):
        line = mapping.get("__line__", 1)
        raise UserError(f"{path}:{line}: {what} has no '{key}'; add it (see prompts/README.md)")
    return mapping[key]


def file_version(raw: dict, path: Path, raw_bytes: bytes) -> int:
    """A prompt or frame file's ``version``: a whole number, 1 or more (1 when absent)."""
    version = raw.get("version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    lines = raw_bytes.decode("utf-8").splitlines()
    line = next((n for n, text in enumerate(lines, start=1) if text.startswith("version:")), 1)
    raise UserError(f"{path}:{line}: version must be a whole number, 1 or more (e.g. version: 2); got {version!r}")


def _check_keys(mapping: dict, allowed: set[str], path: Path, what: str) -> None:
    unknown = sorted(k for k in mapping if k != "__line__" and k not in allowed)
    if unknown:
        line = mapping.get("__line__", 1)
        raise UserError(
            f"{path}:{line}: {what} has unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}"
        )


def check_slots(text: str, where: str, masks: int = 1) -> None:
    """Raise UserError unless ``text`` has ``masks`` {mask} slots, one group slot and no stray brace.

    ``where`` prefixes the message ("file:line: template"); templates have one mask, whole
    sentences (the identity frames of ``analysis``) none.
    """
    slots = SLOT_PATTERN.findall(text)
    group_slots = [s for s in slots if s.split(".")[0] == GROUP_SLOT]
    if slots.count(MASK_SLOT) != masks:
        expected = {0: "no {mask} slot", 1: "exactly one {mask} slot"}.get(masks, f"{masks} {{mask}} slots")
        raise UserError(f"{where} {text!r} must contain {expected}, found {slots.count(MASK_SLOT)}")
    if len(group_slots) != 1:
        raise UserError(
            f"{where} {text!r} must contain exactly one {{group}} slot "
            f"({{group}} or {{group.<case>}}), found {len(group_slots)}"
        )
    leftover = SLOT_PATTERN.sub("", text)
    if "{" in leftover or "}" in leftover:
        raise UserError(f"{where} {text!r} has an unbalanced or malformed brace")


def _item_header(raw, path: Path, kind: str, allowed: set[str]) -> tuple[int, str]:
    """``(line, id)`` of a template or group mapping, after checking its keys."""
    if not isinstance(raw, dict):
        raise UserError(f"{path}: every {kind} must be a mapping with keys {', '.join(sorted(allowed))}")
    item_id = str(_require(raw, "id", path, kind))
    _check_keys(raw, allowed, path, f"{kind} {item_id!r}")
    return raw["__line__"], item_id


def _check_choice(value, allowed, path: Path, line: int, what: str) -> None:
    if value not in allowed:
        raise UserError(f"{path}:{line}: {what} {value!r}; expected one of {sorted(allowed)}")


def _parse_template(raw, path: Path) -> Template:
    line, template_id = _item_header(raw, path, "template", TEMPLATE_KEYS)
    text = str(_require(raw, "text", path, f"template {template_id!r}"))
    applies_to = raw.get("applies_to", "groups")
    _check_choice(applies_to, TEMPLATE_KINDS, path, line, f"template {template_id!r} has applies_to")
    check_slots(text, f"{path}:{line}: template")
    return Template(id=template_id, applies_to=applies_to, text=text, line=line)


def _parse_group(raw, path: Path) -> Group:
    line, group_id = _item_header(raw, path, "group", GROUP_KEYS)
    what = f"group {group_id!r}"
    category = _require(raw, "category", path, what)
    _check_choice(category, CATEGORIES, path, line, f"{what} has unknown category")
    if raw.get("missing"):
        return Group(group_id, category, None, None, None, line, missing=str(raw["missing"]))
    text = str(_require(raw, "text", path, what)).strip()
    gender = _require(raw, "gender", path, what)
    number = _require(raw, "number", path, what)
    _check_choice(gender, GENDERS, path, line, f"{what} has gender")
    _check_choice(number, NUMBERS, path, line, f"{what} has number")
    forms = _strip_lines(raw.get("forms") or {})
    cases = _strip_lines(raw.get("cases") or {})
    if not isinstance(forms, dict) or not isinstance(cases, dict):
        raise UserError(f"{path}:{line}: {what}: 'forms' and 'cases' must be mappings")
    return Group(group_id, category, text, gender, number, line,
                 forms={str(k): str(v) for k, v in forms.items()},
                 cases={str(k): str(v) for k, v in cases.items()})


def load_language(language: str, prompts_dir: Path | str = PROMPTS_DIR) -> LanguagePrompts:
    """Read and validate ``prompts_dir/<language>.yaml``.

    Raises :class:`UserError` naming the file and line of the first problem.
    """
    prompts_dir = Path(prompts_dir)
    path = prompts_dir / f"{language}.yaml"
    if not path.is_file():
        known = available_languages(prompts_dir)
        raise UserError(
            f"unknown language {language!r}: no {path}; available languages: {', '.join(known)}"
        )
    raw_bytes = path.read_bytes()
    try:
        raw = yaml.load(raw_bytes.decode("utf-8"), Loader=_LineLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{where}: not valid YAML ({reason}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}:1: a prompt file must be a YAML mapping (see prompts/README.md)")
    _check_keys(raw, FILE_KEYS, path, "the file")
    declared = _require(raw, "language", path, "the file")
    if declared != language:
        raise UserError(
            f"{path}:1: declares language {declared!r} but is named {language}.yaml; make them equal"
        )
    mixed_agrees_as = raw.get("mixed_agrees_as", "m")
    if mixed_agrees_as not in GENDERS - {"mixed"}:
        raise UserError(f"{path}:1: mixed_agrees_as must be one of m, f, n; got {mixed_agrees_as!r}")
    agreement = _strip_lines(raw.get("agreement") or {})
    if not isinstance(agreement, dict) or not all(isinstance(v, dict) for v in agreement.values()):
        raise UserError(f"{path}:1: 'agreement' must map each slot to {{gender.number: form}}")
    templates = [_parse_template(t, path) for t in raw.get("templates") or []]
    groups = [_parse_group(g, path) for g in raw.get("groups") or []]
    if not templates:
        raise UserError(f"{path}:1: no templates; add at least one under 'templates:'")
    if not groups:
        raise UserError(f"{path}:1: no groups; add at least one under 'groups:'")
    for kind, items in (("template", templates), ("group", groups)):
        seen: dict[str, int] = {}
        for item in items:
            if item.id in seen:
                raise UserError(
                    f"{path}:{item.line}: duplicate {kind} id {item.id!r} (first at line {seen[item.id]})"
                )
            seen[item.id] = item.line
    seen_text: dict[tuple[str, str], Group] = {}
    for group in groups:
        if group.text is None:
            continue
        key = (group.category, group.text.lower())
        if key in seen_text:
            raise UserError(
                f"{path}:{group.line}: group {group.id!r} repeats the term {group.text!r} of "
                f"{seen_text[key].id!r} (line {seen_text[key].line})"
            )
        seen_text[key] = group
    prompts = LanguagePrompts(
        language=language,
        name=str(_require(raw, "name", path, "the file")),
        script=str(_require(raw, "script", path, "the file")),
        lemmatizer=str(raw.get("lemmatizer", language)),
        version=file_version(raw, path, raw_bytes),
        mixed_agrees_as=mixed_agrees_as,
        agreement=agreement,
        templates=tuple(templates),
        groups=tuple(groups),
        path=path,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
    )
    # Render everything once so that a slot no group can fill fails here, with its line.
    for group in prompts.groups:
        if group.text is None:
            continue
        for template in prompts.templates_for(group):
            render(prompts, template, group, mask_token="<mask>")
    return prompts


def load_languages(
    languages: list[str] | None = None, prompts_dir: Path | str = PROMPTS_DIR
) -> dict[str, LanguagePrompts]:
    """Load several languages and check that their group ids are parallel."""
    languages = languages or available_languages(prompts_dir)
    if not languages:
        raise UserError(f"no prompt files (*.yaml) in {prompts_dir}")
    loaded = {lang: load_language(lang, prompts_dir) for lang in languages}
    reference_lang = languages[0]
    reference = {g.id: g for g in loaded[reference_lang].groups}
    for lang, prompts in loaded.items():
        ids = {g.id: g for g in prompts.groups}
        extra = sorted(set(ids) - set(reference))
        absent = sorted(set(reference) - set(ids))
        if extra:
            raise UserError(
                f"{prompts.path}:{ids[extra[0]].line}: group id {extra[0]!r} is not in "
                f"{loaded[reference_lang].path.name}; ids must be parallel across languages "
                f"(mark a group the language cannot express with 'missing:')"
            )
        if absent:
            raise UserError(
                f"{prompts.path}:1: group id {absent[0]!r} of {loaded[reference_lang].path.name} is "
                f"missing; add it (or write it with 'missing: <reason>')"
            )
        for gid, group in ids.items():
            if group.category != reference[gid].category:
                raise UserError(
                    f"{prompts.path}:{group.line}: group {gid!r} has category {group.category!r} "
                    f"but {reference[gid].category!r} in {loaded[reference_lang].path.name}"
                )
    return loaded


def agreement_form(prompts: LanguagePrompts, slot: str, group: Group) -> str:
    """The form of agreement slot ``slot`` for ``group``.

    Lookup order: the group's ``forms[slot]``; then the language's ``agreement[slot]`` under the
    keys ``"<gender>.<number>"``, ``"<number>"``, ``"<gender>"`` (for a mixed group, first with
    ``mixed``, then with the language's ``mixed_agrees_as``), and finally ``"*"``.
    """
    if slot in group.forms:
        return group.forms[slot]
    table = prompts.agreement.get(slot)
    if table is None:
        raise UserError(
            f"{prompts.path}:{group.line}: slot {{{slot}}} is neither in 'agreement' nor in the "
            f"forms of group {group.id!r}; add it to one of them"
        )
    genders = [group.gender] + ([prompts.mixed_agrees_as] if group.gender == "mixed" else [])
    for gender in genders:
        for key in (f"{gender}.{group.number}", group.number, gender):
            if key in table:
                return str(table[key])
    if "*" in table:
        return str(table["*"])
    raise UserError(
        f"{prompts.path}:{group.line}: agreement slot {{{slot}}} has no form for group "
        f"{group.id!r} ({group.gender}.{group.number}); add that key or '*'"
    )


def render(
    prompts: LanguagePrompts,
    template: Template,
    group: Group,
    *,
    mask_token: str,
    mask_group: bool = False,
) -> str:
    """Fill ``template`` with ``group``; ``{mask}`` becomes ``mask_token``.

    With ``mask_group=True`` the group slot also becomes ``mask_token`` (one token, whatever the
    group's length): the sentence whose prediction at the target mask is the prior.
    """

    def fill(match: re.Match) -> str:
        slot = match.group(1)
        if slot == MASK_SLOT:
            return mask_token
        name, _, case = slot.partition(".")
        if name == GROUP_SLOT:
            if mask_group:
                return mask_token
            if not case:
                return group.text
            if case not in group.cases:
                raise UserError(
                    f"{prompts.path}:{group.line}: template {template.id!r} needs the {case!r} "
                    f"form of group {group.id!r}; add it under 'cases:'"
                )
            return group.cases[case]
        if case:
            raise UserError(f"{prompts.path}:{template.line}: unknown slot {{{slot}}}")
        return agreement_form(prompts, slot, group)

    return SLOT_PATTERN.sub(fill, template.text)


def mask_target_index(template: Template) -> int:
    """0 if the target ``{mask}`` comes before the group slot in the template, else 1.

    In a prior sentence the group slot is a mask too; this says which of the two masks is the
    target whose distribution is the prior.
    """
    slots = [s.split(".")[0] for s in SLOT_PATTERN.findall(template.text)]
    return 0 if slots.index(MASK_SLOT) < slots.index(GROUP_SLOT) else 1


def build_prompts(
    prompts: LanguagePrompts, *, mask_token: str, categories: list[str] | None = None
) -> list[Prompt]:
    """Every (group, template) sentence of a language, optionally for some categories only."""
    out = []
    for group in prompts.groups:
        if group.text is None or (categories and group.category not in categories):
            continue
        for template in prompts.templates_for(group):
            out.append(Prompt(
                language=prompts.language,
                category=group.category,
                group_id=group.id,
                group=group.text,
                template_id=template.id,
                sentence=render(prompts, template, group, mask_token=mask_token),
                prior_sentence=render(prompts, template, group, mask_token=mask_token, mask_group=True),
                prior_mask_index=mask_target_index(template),
            ))
    return out


def summary(loaded: dict[str, LanguagePrompts]) -> dict[str, dict[str, int]]:
    """``{language: {category: number_of_groups}}`` over groups the language expresses."""
    result = {}
    for lang, prompts in loaded.items():
        counts = {c: 0 for c in CATEGORIES}
        for group in prompts.groups:
            if group.text is not None:
                counts[group.category] += 1
        result[lang] = counts
    return result


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="python -m probing.prompts",
        description="Validate prompt files and print {language: {category: number_of_groups}} (groups the "
                    "language expresses; the groups it marks missing are listed on stderr).",
        epilog="examples:\n  python -m probing.prompts --check\n  python -m probing.prompts --check my_prompts/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", nargs="?", const=str(PROMPTS_DIR), metavar="DIR",
                        help="validate the prompt files in DIR (default: the shipped prompts/)")
    args = parser.parse_args(argv)
    if args.check is None:
        parser.error("nothing to do; pass --check [DIR]")
    loaded = load_languages(prompts_dir=args.check)
    print(json.dumps(summary(loaded), ensure_ascii=False, indent=2))
    for lang, prompts in loaded.items():
        missing = [g.id for g in prompts.groups if g.text is None]
        if missing:
            print(f"note: {lang} marks {len(missing)} of {len(prompts.groups)} groups missing "
                  f"(not probed): {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
