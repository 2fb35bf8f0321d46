"""Identity template test sets: every group of ``prompts/`` in neutral and toxic sentence frames.

Following Dixon et al. (2018), a classifier can be audited for unintended identity bias without
labelled data for every identity: each group is put into the same frames, neutral ("I work with
{group}.", label 0) and toxic ("I hate {group}.", label 1), so any difference between groups in
the scores is due to the identity term alone.

The frames are data, one file per language, ``analysis/frames/<lang>.yaml`` (format in
``analysis/frames/README.md``), with the slot syntax of ``prompts/`` (``{det}{group}``,
``{group.acc}``, agreement slots); they are rendered with :func:`probing.prompts.render`, so the
articles and agreement follow each group's gender, number and per-group forms. Country groups
get their own frames (``applies_to: countries``), as in the probing templates.

    python -m analysis.identity_sets [--languages en fr] [--categories gender religion]

writes ``identity_set.csv`` (``language, category, group_id, group, frame_id, label, text``) and
``manifest.json`` to ``results/analysis/identity_sets/``. Add a ``score`` column with a classifier's
toxicity scores and pass the file to ``python -m analysis.fairness``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis._common import command_line, output_folder, save_run
from probing import prompts as prompt_files
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import add_overwrite_option

FRAMES_DIR = Path(__file__).resolve().parent / "frames"
FILE_KEYS = {"language", "version", "agreement", "frames"}
FRAME_KEYS = {"id", "applies_to", "label", "text"}
LABELS = (0, 1)
COLUMNS = ["language", "category", "group_id", "group", "frame_id", "label", "text"]

EXAMPLES = """examples:
  python -m analysis.identity_sets                                  # every language with frames
  python -m analysis.identity_sets --languages fr el --categories gender religion
  python -m analysis.identity_sets --frames_dir my_frames/ --output_dir results/analysis/my_set
"""


@dataclass(frozen=True)
class Frame:
    template: prompt_files.Template  # text without {mask}; applies_to "groups" or "countries"
    label: int


@dataclass(frozen=True)
class LanguageFrames:
    language: str
    version: int
    agreement: dict
    frames: tuple[Frame, ...]
    path: Path
    sha256: str

    def for_group(self, group: prompt_files.Group) -> list[Frame]:
        kind = "countries" if group.category == prompt_files.COUNTRY_CATEGORY else "groups"
        return [f for f in self.frames if f.template.applies_to == kind]


def available_languages(frames_dir: Path | str = FRAMES_DIR) -> list[str]:
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise UserError(f"frames folder {frames_dir} does not exist; pass --frames_dir with an existing folder")
    return sorted(p.stem for p in frames_dir.glob("*.yaml") if not p.stem.startswith("_"))


def load_frames(language: str, frames_dir: Path | str = FRAMES_DIR) -> LanguageFrames:
    """Read and validate ``frames_dir/<language>.yaml``."""
    path = Path(frames_dir) / f"{language}.yaml"
    if not path.is_file():
        raise UserError(f"no identity frames for {language!r}: {path} does not exist; available: "
                        f"{', '.join(available_languages(frames_dir)) or 'none'} (add the file, see "
                        f"analysis/frames/README.md)")
    raw_bytes = path.read_bytes()
    try:
        raw = yaml.safe_load(raw_bytes.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a frames file must be a mapping with keys {', '.join(sorted(FILE_KEYS))}")
    unknown = sorted(set(raw) - FILE_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(FILE_KEYS))}")
    if raw.get("language") != language:
        raise UserError(f"{path}: declares language {raw.get('language')!r} but is named {language}.yaml")
    agreement = raw.get("agreement") or {}
    if not isinstance(agreement, dict) or not all(isinstance(v, dict) for v in agreement.values()):
        raise UserError(f"{path}: 'agreement' must map each slot to {{gender.number: form}}")
    frames, seen = [], set()
    for index, item in enumerate(raw.get("frames") or []):
        if not isinstance(item, dict) or "id" not in item or "text" not in item:
            raise UserError(f"{path}: frame {index + 1} must be a mapping with keys {', '.join(sorted(FRAME_KEYS))}")
        frame_id = str(item["id"])
        unknown = sorted(set(item) - FRAME_KEYS)
        if unknown:
            raise UserError(f"{path}: frame {frame_id!r} has unknown key {unknown[0]!r}; allowed: "
                            f"{', '.join(sorted(FRAME_KEYS))}")
        if frame_id in seen:
            raise UserError(f"{path}: duplicate frame id {frame_id!r}")
        seen.add(frame_id)
        applies_to = item.get("applies_to", "groups")
        if applies_to not in prompt_files.TEMPLATE_KINDS:
            raise UserError(f"{path}: frame {frame_id!r} has applies_to {applies_to!r}; expected one of "
                            f"{sorted(prompt_files.TEMPLATE_KINDS)}")
        if item.get("label") not in LABELS or isinstance(item.get("label"), bool):
            raise UserError(f"{path}: frame {frame_id!r} needs label 0 (neutral) or 1 (toxic), got {item.get('label')!r}")
        text = str(item["text"])
        prompt_files.check_slots(text, f"{path}: frame {frame_id!r}", masks=0)
        frames.append(Frame(prompt_files.Template(frame_id, applies_to, text, index + 1), int(item["label"])))
    if {f.label for f in frames if f.template.applies_to == "groups"} != set(LABELS):
        raise UserError(f"{path}: the 'groups' frames need both a neutral (label 0) and a toxic (label 1) frame")
    return LanguageFrames(language, prompt_files.file_version(raw, path, raw_bytes),
                          {str(k): v for k, v in agreement.items()},
                          tuple(frames), path, hashlib.sha256(raw_bytes).hexdigest())


def check_parallel(loaded: dict[str, LanguageFrames]) -> None:
    """Every language has the same frame ids with the same kind and label (so sets line up)."""
    languages = list(loaded)
    reference = {f.template.id: (f.template.applies_to, f.label) for f in loaded[languages[0]].frames}
    for language in languages[1:]:
        frames = {f.template.id: (f.template.applies_to, f.label) for f in loaded[language].frames}
        if frames != reference:
            differing = sorted(set(frames.items()) ^ set(reference.items()))[0][0]
            raise UserError(f"{loaded[language].path}: frame {differing!r} differs from "
                            f"{loaded[languages[0]].path.name} (ids, applies_to and label must be the same in "
                            f"every language)")


def render_frame(prompts: prompt_files.LanguagePrompts, frames: LanguageFrames, frame: Frame,
                 group: prompt_files.Group) -> str:
    """The frame filled with the group, first letter capitalised.

    The frames file's ``agreement`` slots are added to the language's table (and take precedence).
    """
    merged = dataclasses.replace(prompts, agreement={**prompts.agreement, **frames.agreement})
    try:
        text = prompt_files.render(merged, frame.template, group, mask_token="")
    except UserError as error:
        raise UserError(f"{frames.path}: frame {frame.template.id!r} cannot be rendered for group {group.id!r} "
                        f"({error}); add the slot to the frames file's 'agreement'") from None
    return text[:1].upper() + text[1:]


def identity_set(prompts: prompt_files.LanguagePrompts, frames: LanguageFrames,
                 categories: list[str] | None = None) -> pd.DataFrame:
    """One row per (group, frame) of a language; groups the language cannot express are skipped."""
    rows = []
    for group in prompts.groups:
        if group.text is None or (categories and group.category not in categories):
            continue
        for frame in frames.for_group(group):
            rows.append({"language": prompts.language, "category": group.category, "group_id": group.id,
                         "group": group.text, "frame_id": frame.template.id, "label": frame.label,
                         "text": render_frame(prompts, frames, frame, group)})
    return pd.DataFrame(rows, columns=COLUMNS)


def build(languages: list[str] | None = None, categories: list[str] | None = None,
          frames_dir: Path | str = FRAMES_DIR, prompts_dir: Path | str = prompt_files.PROMPTS_DIR
          ) -> tuple[pd.DataFrame, dict, dict, list[str]]:
    """The identity set of ``languages`` (default: every language with a prompt file and frames) and
    ``categories`` (default: all): ``(table, frames, prompts, skipped)``, ``frames`` and ``prompts`` by
    language, ``skipped`` the languages with a prompt file but no frames (only when ``languages`` is None).
    Used by this command and by ``analysis.fairness --models``."""
    if categories:
        unknown = [c for c in categories if c not in prompt_files.CATEGORIES]
        if unknown:
            raise UserError(f"unknown category {unknown[0]!r}; expected some of {', '.join(prompt_files.CATEGORIES)}")
    with_frames = available_languages(frames_dir)
    with_prompts = prompt_files.available_languages(prompts_dir)
    skipped = []
    if languages:
        languages = list(languages)
    else:
        languages = [lang for lang in with_prompts if lang in with_frames]
        skipped = [lang for lang in with_prompts if lang not in with_frames]
    if not languages:
        raise UserError(f"no language has both a prompt file in {prompts_dir} and frames in {frames_dir}")
    frames = {lang: load_frames(lang, frames_dir) for lang in languages}
    check_parallel(frames)
    prompts = {lang: prompt_files.load_language(lang, prompts_dir) for lang in languages}
    table = pd.concat([identity_set(prompts[lang], frames[lang], categories) for lang in languages],
                      ignore_index=True)
    if table.empty:
        raise UserError("no group of these languages and categories has a frame")
    return table, frames, prompts, skipped


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.identity_sets",
        description="Write an identity template test set: every group of prompts/ in the neutral (label 0) and "
                    "toxic (label 1) frames of analysis/frames/, per language.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--languages", nargs="+", default=None, metavar="LANG",
        help="default: every language with both a prompt file and a frames file")
    add("--categories", nargs="+", default=None, metavar="CATEGORY", help="default: all")
    add("--frames_dir", default=str(FRAMES_DIR), help="default: analysis/frames/")
    add("--prompts_dir", default=str(prompt_files.PROMPTS_DIR), help="default: prompts/")
    add("--output_dir", default=None, help="default: results/analysis/identity_sets")
    add_overwrite_option(parser)
    return parser


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    target = output_folder(args, "analysis.identity_sets", "identity_sets")
    table, frames, prompts, skipped = build(args.languages, args.categories, args.frames_dir, args.prompts_dir)
    languages = list(frames)
    no_frames = sorted({g.category for p in prompts.values() for g in p.groups
                        if g.text is not None and not frames[p.language].for_group(g)
                        and (not args.categories or g.category in args.categories)})
    manifest = {
        "command": command_line("analysis.identity_sets", argv),
        "parameters": vars(args),
        "seed": None,
        "inputs": [],
        "prompts": {lang: {"file": p.path.name, "version": p.version, "sha256": p.sha256} for lang, p in prompts.items()},
        "frames": {lang: {"file": f.path.name, "version": f.version, "sha256": f.sha256} for lang, f in frames.items()},
        "summary": {"rows": len(table), "per_language": table["language"].value_counts().sort_index().to_dict(),
                    "labels": table["label"].value_counts().sort_index().to_dict(),
                    "categories_without_frames": no_frames},
    }
    save_run(target, {"identity_set.csv": table}, manifest, overwrite=args.overwrite)
    if skipped:
        print(f"note: no frames for {', '.join(skipped)} (add analysis/frames/<lang>.yaml); skipped", file=sys.stderr)
    print(f"wrote {len(table)} sentences ({table['group_id'].nunique()} groups, {len(languages)} language(s)) "
          f"to {target / 'identity_set.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
