"""Resumable runs: the engine's results are saved shard by shard in a staging folder.

A run's sentences are split into shards (per language, whole groups, at most
``--shard_sentences`` sentences each). Each finished shard's top-k arrays are saved in
``<output parent>/.<run name>.partial/`` as ``shard-NNNN.npz`` (written to a temporary name, then
renamed, so a file with the final name is always complete). The folder's ``state.json`` holds the
run's fingerprint: every option that changes results, the model (source, revision and a stamp
of its files), the prompt and lexicon checksums, package versions and the git commit.

Rerunning the same command after a crash or Ctrl-C finds the folder, checks the fingerprint and
skips the shards already done; since each shard is scored on its own, in the same batches, the
results equal an uninterrupted run's. A fingerprint that differs means another run: its shards
are discarded and the run starts over. The final folder is then assembled from the shards and the
staging folder removed. A lock (``flock``) keeps two runs from writing one staging folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probing.errors import UserError
from probing.manifest import leftover_folders, sha256_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs are the user's to avoid
    fcntl = None

STATE_FILE = "state.json"
LOCK_FILE = "lock"


@dataclass(frozen=True)
class ShardPlan:
    """Which prompts (by index into the run's prompt list) make up one shard."""

    index: int
    language: str
    start: int
    stop: int

    @property
    def label(self) -> str:
        return f"{self.language} {self.index + 1}"


def plan_shards(prompts: list, max_sentences: int) -> list[ShardPlan]:
    """Split ``prompts`` (ordered by language, then group) into shards of whole groups of one
    language with at most ``max_sentences`` sentences (a larger group gets a shard of its own)."""
    shards, start = [], 0
    while start < len(prompts):
        language, stop = prompts[start].language, start
        while stop < len(prompts) and prompts[stop].language == language:
            group_end = stop
            while group_end < len(prompts) and (prompts[group_end].language, prompts[group_end].group_id) == (
                    language, prompts[stop].group_id):
                group_end += 1
            if stop > start and group_end - start > max_sentences:
                break
            stop = group_end
        shards.append(ShardPlan(len(shards), language, start, stop))
        start = stop
    return shards


def model_stamp(source: str, revision: str | None) -> dict:
    """What identifies a model's weights: for a folder, its config's checksum and its files'
    sizes and modification times (rewriting the folder changes them); for a hub id, the revision."""
    path = Path(source)
    if not path.is_dir():
        return {"source": source, "revision": revision}
    files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.iterdir()) if p.is_file()}
    config = path / "config.json"
    return {"source": str(path.resolve()), "revision": revision,
            "config_sha256": sha256_file(config) if config.is_file() else None, "files": files}


def fingerprint_hash(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


def staging_folder(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


class ShardStore:
    """The staging folder of one run. Use :meth:`open` first; it returns the shards already done."""

    def __init__(self, target: Path, fingerprint: dict, n_shards: int):
        self.target = Path(target)
        self.folder = staging_folder(self.target)
        self.fingerprint = fingerprint
        self.hash = fingerprint_hash(fingerprint)
        self.n_shards = n_shards
        self._lock = None

    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:04d}.npz"

    def open(self) -> set[int]:
        """Lock the staging folder, discard what does not belong to this run, and return the
        indices of the complete shards (saying on stderr when it resumes)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._remove_stale_siblings()  # only under the lock: a live run may be writing its own
        state = self._read_state()
        shards = sorted(self.folder.glob("shard-*"))
        if state is not None and state.get("fingerprint_sha256") != self.hash and shards:
            changed = _differences(state.get("fingerprint", {}), self.fingerprint)
            print(f"note: discarding {len(shards)} shard file(s) in {self.folder} from an earlier run with other "
                  f"settings ({', '.join(changed[:6]) or 'another version'}); starting over", file=sys.stderr)
            for path in shards:
                path.unlink()
            shards = []
        elif state is None and shards:
            print(f"note: {self.folder} has no readable {STATE_FILE}; discarding its {len(shards)} shard file(s)",
                  file=sys.stderr)
            for path in shards:
                path.unlink()
            shards = []
        self._write_state()
        done = set()
        for path in shards:
            index = _shard_index(path)
            if path.suffix != ".npz" or index is None or index >= self.n_shards or not self._readable(path):
                print(f"note: discarding the interrupted or damaged shard file {path.name}", file=sys.stderr)
                path.unlink()
                continue
            done.add(index)
        if done:
            print(f"resuming: {len(done)} of {self.n_shards} shards done (from {self.folder})", file=sys.stderr)
        return done

    def save(self, index: int, token_ids: np.ndarray, log_probs: np.ndarray, scores: np.ndarray) -> None:
        path = self.shard_path(index)
        partial = path.with_name(path.name + ".tmp")
        with open(partial, "wb") as handle:
            np.savez(handle, token_ids=token_ids, log_probs=log_probs, scores=scores)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)

    def n_done(self) -> int:
        """How many complete shard files are on disk."""
        return len(list(self.folder.glob("shard-*.npz")))

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.load(self.shard_path(index)) as data:
            return data["token_ids"], data["log_probs"], data["scores"]

    def remove(self) -> None:
        """Delete the staging folder (after the result folder is in place)."""
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _acquire_lock(self) -> None:
        self._lock = open(self.folder / LOCK_FILE, "a+")
        if fcntl is None:
            return
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise UserError(f"another probing run is writing {self.target} (its staging folder {self.folder} is "
                            f"locked); wait for it to finish, or pass another --run_name or --output_dir") from None

    def _read_state(self) -> dict | None:
        try:
            return json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def _write_state(self) -> None:
        state = {"fingerprint_sha256": self.hash, "n_shards": self.n_shards, "fingerprint": self.fingerprint}
        partial = self.folder / (STATE_FILE + ".tmp")
        partial.write_text(json.dumps(state, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        os.replace(partial, self.folder / STATE_FILE)

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            with np.load(path) as data:
                return {"token_ids", "log_probs", "scores"} <= set(data.files)
        except (OSError, ValueError, EOFError):
            return False

    def _remove_stale_siblings(self) -> None:
        """Half-written result folders of killed runs (``AtomicFolder``'s ``.<name>.tmp-*``)."""
        for path in leftover_folders(self.target):
            shutil.rmtree(path, ignore_errors=True)


def _shard_index(path: Path) -> int | None:
    stem = path.name.split(".")[0]
    try:
        return int(stem.split("-")[1])
    except (IndexError, ValueError):
        return None


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two fingerprints."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out
