"""Resumable runs: the engine's results are saved shard by shard in a staging folder.

A run's sentences are split into shards (per language, whole groups, at most
``--shard_sentences`` sentences each). Each finished shard's top-k arrays are saved in
``<output parent>/.<run name>.partial/`` as ``shard-NNNN.npz`` beside a record ``shard-NNNN.json``
(the shard's index, the run's fingerprint hash, its byte size and sha256, and each array's shape
and dtype). Both are written to temporary names and made durable first; the record is renamed into
place before the shard, so a shard file with its final name is always complete and recorded. The
folder's ``state.json`` holds the run's fingerprint: every option that changes results, the model
(source, revision and a stamp of its files), the prompt and lexicon checksums, package versions
and the git commit.

Rerunning the same command after a crash or Ctrl-C finds the folder, checks the fingerprint and
skips the shards already done; since each shard is scored on its own, in the same batches, the
results equal an uninterrupted run's. A fingerprint that differs means another run: its shards
are discarded and the run starts over. Every shard kept is checked first: its index is in the
plan, it has a record of this run for that index, its size and sha256 are the recorded ones, it
opens as an ``.npz`` (without pickles) holding the three arrays, and each array has the recorded
dtype and the plan's shape (the shard's sentences by the number of candidates). A shard failing
any check (truncated, flipped bytes, copied from another shard or run, half-written) is deleted
with a ``note:`` on stderr and scored again. :meth:`ShardStore.load` checks the checksum again
when the tables are built; a shard changed since is a one-line error (rerun to rescore it).

The final folder is then assembled from the shards and the staging folder removed. A lock
(``flock``), taken by :meth:`ShardStore.lock` before the model loads, keeps two runs from writing
one staging folder: the second is refused at once. A full disk while saving a shard is a one-line
error naming the folder, the bytes needed and free; the shards saved before stay valid and a rerun
resumes from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probing.errors import UserError, disk_full_error, is_disk_full
from probing.manifest import leftover_folders, sha256_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs are the user's to avoid
    fcntl = None

STATE_FILE = "state.json"
LOCK_FILE = "lock"
ARRAYS = ("token_ids", "log_probs", "scores")


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
    """The staging folder of one run.

    :meth:`lock` first (as soon as the result folder is known: it refuses a second run at once),
    then :meth:`open` with the run's fingerprint and plan; it returns the shards already done.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.folder = staging_folder(self.target)
        self.fingerprint: dict | None = None
        self.hash: str | None = None
        self.n_shards = 0
        self._shapes: dict[int, tuple[int, int]] = {}
        self._records: dict[int, dict] = {}
        self._lock = None

    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:04d}.npz"

    def record_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:04d}.json"

    def lock(self) -> None:
        """Create and lock the staging folder (a :class:`UserError` if another run holds it), and
        remove the half-written result folders of killed runs into the same place."""
        self.folder.mkdir(exist_ok=True)
        self._acquire_lock()
        self._remove_stale_siblings()  # only under the lock: a live run may be writing its own

    def open(self, fingerprint: dict, plan: list[ShardPlan], columns: int) -> set[int]:
        """Discard what does not belong to this run (fingerprint ``fingerprint``, shards ``plan`` of
        ``columns`` candidates each) or fails its checks, and return the indices of the verified
        shards (saying on stderr what it discards and when it resumes). Call :meth:`lock` first."""
        if self._lock is None:
            raise RuntimeError("ShardStore.open needs the lock: call lock() first")
        self.fingerprint, self.hash, self.n_shards = fingerprint, fingerprint_hash(fingerprint), len(plan)
        self._shapes = {shard.index: (shard.stop - shard.start, columns) for shard in plan}
        state = self._read_state()
        files = sorted(self.folder.glob("shard-*"))
        n_shards = sum(1 for path in files if path.suffix == ".npz")
        if state is not None and state.get("fingerprint_sha256") != self.hash and files:
            if n_shards:
                changed = _differences(state.get("fingerprint", {}), self.fingerprint)
                print(f"note: discarding {n_shards} shard file(s) in {self.folder} from an earlier run with other "
                      f"settings ({', '.join(changed[:6]) or 'another version'}); starting over", file=sys.stderr)
            _unlink_all(files)
            files = []
        elif state is None and files:
            if n_shards:
                print(f"note: {self.folder} has no readable {STATE_FILE}; discarding its {n_shards} shard file(s)",
                      file=sys.stderr)
            _unlink_all(files)
            files = []
        self._write_state()
        records = {}
        for path in files:
            index = _shard_index(path)
            if index is not None and path == self.record_path(index):
                records[index] = path
        done = set()
        for path in files:
            if path in records.values():
                continue
            index = _shard_index(path)
            if path.suffix != ".npz" or index is None or path != self.shard_path(index):
                problem = "half-written or not a shard file"
            elif index not in self._shapes:
                problem = f"shard {index + 1} is not in this run's plan of {self.n_shards} shards"
            else:
                record = _read_json(records[index]) if index in records else None
                problem = self._read(path, index, record)[1]
                if problem is None:
                    self._records[index] = record
                    done.add(index)
                    continue
            again = "; it will be scored again" if index in self._shapes else ""
            print(f"note: discarding the interrupted or damaged shard file {path.name} ({problem}){again}",
                  file=sys.stderr)
            path.unlink()
        for index, path in records.items():
            if index not in done:  # a shard discarded, or never renamed into place
                path.unlink()
        if done:
            print(f"resuming: {len(done)} of {self.n_shards} shards done (from {self.folder})", file=sys.stderr)
        return done

    def save(self, index: int, token_ids: np.ndarray, log_probs: np.ndarray, scores: np.ndarray) -> None:
        """Save shard ``index``: record and shard durable under temporary names, then the record
        renamed into place, then the shard. A full disk (or another write error) is a
        :class:`UserError`; the temporary files are removed and the shards saved before stay valid."""
        buffer = io.BytesIO()
        arrays = dict(zip(ARRAYS, (token_ids, log_probs, scores)))
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        record = {"index": index, "fingerprint_sha256": self.hash, "bytes": len(data),
                  "sha256": hashlib.sha256(data).hexdigest(),
                  "arrays": {name: {"shape": list(array.shape), "dtype": str(array.dtype)}
                             for name, array in arrays.items()}}
        record_bytes = json.dumps(record, indent=2).encode()
        path, record_path = self.shard_path(index), self.record_path(index)
        partials = [path.with_name(path.name + ".tmp"), record_path.with_name(record_path.name + ".tmp")]
        try:
            write_durably(partials[0], data)
            write_durably(partials[1], record_bytes)
            os.replace(partials[1], record_path)
            os.replace(partials[0], path)
        except OSError as error:
            _unlink_all(partials)
            saved = self.n_done()
            then = (f"run the same command again to resume from the {saved} shard(s) saved in {self.folder}"
                    if saved else "run the same command again")
            if is_disk_full(error):
                raise disk_full_error(self.folder, f"to save shard {index + 1} of {self.n_shards}",
                                      then=then, needed=len(data) + len(record_bytes)) from None
            raise UserError(f"cannot save shard {index + 1} of {self.n_shards} in {self.folder} "
                            f"({error.strerror or error}); fix the folder, then {then}") from None
        self._records[index] = record

    def n_done(self) -> int:
        """How many complete shard files are on disk."""
        return len(list(self.folder.glob("shard-*.npz")))

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays of shard ``index``, checked against its record once more (a
        :class:`UserError` if the file changed since :meth:`open` or :meth:`save`)."""
        path = self.shard_path(index)
        arrays, problem = self._read(path, index, self._records.get(index))
        if problem is not None:
            raise UserError(f"the shard file {path} changed while this run was using it ({problem}); run the same "
                            f"command again to score it again")
        return arrays["token_ids"], arrays["log_probs"], arrays["scores"]

    def remove(self) -> None:
        """Delete the staging folder (after the result folder is in place)."""
        self.release()
        self._clear()

    def abandon(self) -> bool:
        """After a failure or Ctrl-C: if no shard is saved, delete the staging folder (only while
        holding its lock: otherwise it is another run's). Returns whether it was deleted."""
        if self._lock is None or self.n_done():
            self.release()
            return False
        self._clear()
        self.release()
        return not self.folder.exists()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _clear(self) -> None:
        """Delete the files this tool writes in the staging folder, then the folder if empty (so
        a file someone else put there is kept)."""
        _unlink_all([*self.folder.glob("shard-*"), *self.folder.glob(STATE_FILE + "*"), self.folder / LOCK_FILE])
        try:
            self.folder.rmdir()
        except OSError:
            pass

    def _read(self, path: Path, index: int, record: dict | None) -> tuple[dict | None, str | None]:
        """``(arrays, None)`` if ``path`` is shard ``index`` as recorded in ``record``, else
        ``(None, what is wrong)``."""
        if not isinstance(record, dict) or record.get("fingerprint_sha256") != self.hash:
            return None, "no checksum of this run was recorded for it"
        if record.get("index") != index:
            return None, f"its record is shard {record.get('index')}'s"
        try:
            size = path.stat().st_size
            if size != record.get("bytes"):
                return None, f"it has {size} bytes, {record.get('bytes')} were recorded when it was saved"
            data = path.read_bytes()
        except OSError as error:
            return None, f"unreadable: {error.strerror or error}"
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            return None, "its sha256 differs from the one recorded when it was saved"
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in ARRAYS}
        # Why so broad: np.load on damaged bytes raises BadZipFile, ValueError, OSError, EOFError,
        # KeyError, zlib.error, UnpicklingError or MemoryError (a corrupt header's huge shape)
        except Exception as error:  # noqa: BLE001
            return None, f"not a readable .npz: {type(error).__name__}"
        expected = self._shapes.get(index)
        recorded_arrays = record.get("arrays") if isinstance(record.get("arrays"), dict) else {}
        for name, array in arrays.items():
            recorded = recorded_arrays.get(name) if isinstance(recorded_arrays.get(name), dict) else {}
            if array.shape != expected or list(array.shape) != recorded.get("shape"):
                return None, f"{name} has shape {array.shape}, the plan needs {expected}"
            if str(array.dtype) != recorded.get("dtype"):
                return None, f"{name} has dtype {array.dtype}, {recorded.get('dtype')} recorded"
        return arrays, None

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
        state = _read_json(self.folder / STATE_FILE)
        return state if isinstance(state, dict) else None

    def _write_state(self) -> None:
        state = {"fingerprint_sha256": self.hash, "n_shards": self.n_shards, "fingerprint": self.fingerprint}
        partial = self.folder / (STATE_FILE + ".tmp")
        try:
            write_durably(partial, json.dumps(state, ensure_ascii=False, indent=2, default=str).encode())
            os.replace(partial, self.folder / STATE_FILE)
        except OSError as error:
            _unlink_all([partial])
            if is_disk_full(error):
                raise disk_full_error(self.folder, f"to save {STATE_FILE}", then="run the same command again") from None
            raise UserError(f"cannot write {self.folder / STATE_FILE} ({error.strerror or error}); fix the "
                            f"folder or pass another --output_dir") from None

    def _remove_stale_siblings(self) -> None:
        """Half-written result folders of killed runs (``AtomicFolder``'s ``.<name>.tmp-*``)."""
        for path in leftover_folders(self.target):
            shutil.rmtree(path, ignore_errors=True)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and flush it to the disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON
        return None


def _unlink_all(paths) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


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
