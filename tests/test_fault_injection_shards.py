"""Faults around a resumable run: damaged or foreign shards, full disks, Ctrl-C, a held lock and
a read-only result folder. Each ends in one line (or a note and a correct result), never a
traceback, a stuck rerun or a wrong result."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probing import models, run, shards
from probing.errors import UserError
from probing.manifest import AtomicFolder
from probing.predictions import read_predictions
from probing.shards import ShardStore, staging_folder
from test_resume import interrupt_after

ROOT = Path(__file__).resolve().parent.parent
# en gender: 26 groups, 130 sentences, in shards of 30, 30, 30, 30 and 10 sentences
ARGS = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "--categories", "gender", "--top_k", "10",
        "--shard_sentences", "30", "--quiet"]
N_SHARDS = 5
SAVED = 4  # shards on disk after the interrupted run: 0-3, all of 30 rows


@pytest.fixture(scope="module")
def reference(tiny_dir, tmp_path_factory):
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert run.main([*ARGS, "--output_dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def interrupted(tiny_dir, tmp_path_factory):
    """The staging folder of a run stopped (as by Ctrl-C) once ``SAVED`` shards were saved."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after(patch, SAVED)
        assert run.main([*ARGS, "--output_dir", str(out)]) == run.INTERRUPTED_EXIT_CODE
    assert not out.exists()
    return staging_folder(out)


def resumable(interrupted: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the interrupted run's staging folder for a run into ``tmp_path/run``:
    ``(output folder, staging folder)``."""
    out = tmp_path / "run"
    shutil.copytree(interrupted, staging_folder(out), ignore=shutil.ignore_patterns("lock"))
    return out, staging_folder(out)


def assert_same_results(out: Path, reference: Path):
    assert (out / "profiles.csv").read_bytes() == (reference / "profiles.csv").read_bytes()
    assert (out / "filters.csv").read_bytes() == (reference / "filters.csv").read_bytes()
    pd.testing.assert_frame_equal(read_predictions(out), read_predictions(reference))


def message_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr, less the tiny model's random-weights warning."""
    return [line for line in stderr.splitlines() if line.strip() and "random weights" not in line]


def rerun_recovers(out, reference, cli, discarded: dict[str, str], saved: int = SAVED) -> str:
    """Rerun into ``out`` (where ``saved`` shards were saved): each shard file in ``discarded`` is
    noted (with the given reason) and scored again, the rest resumed, and the result equals the
    uninterrupted run's."""
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 0, stderr
    assert "Traceback" not in stderr
    for name, reason in discarded.items():
        notes = [line for line in stderr.splitlines() if f"discarding the interrupted or damaged shard file {name} " in line]
        assert len(notes) == 1 and notes[0].startswith("note: ") and reason in notes[0], stderr
    kept = saved - sum(1 for name in discarded if int(name[6:10]) < saved)
    assert f"resuming: {kept} of {N_SHARDS} shards done" in stderr
    assert_same_results(out, reference)
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]  # staging folder removed
    return stderr


def never_load(*args, **kwargs):
    raise AssertionError("the model was loaded")


def test_truncated_shard_is_rescored(reference, interrupted, tmp_path, cli):
    out, staging = resumable(interrupted, tmp_path)
    shard = staging / "shard-0001.npz"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # a copy cut short
    rerun_recovers(out, reference, cli, {"shard-0001.npz": "were recorded when it was saved"})


def test_flipped_bytes_are_rescored(reference, interrupted, tmp_path, cli):
    out, staging = resumable(interrupted, tmp_path)
    shard = staging / "shard-0002.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit-rotted byte inside an array: still a valid .npz
    shard.write_bytes(bytes(data))
    with np.load(shard) as loaded:
        assert loaded["token_ids"].shape == (30, 10)
    rerun_recovers(out, reference, cli, {"shard-0002.npz": "sha256 differs"})


def test_wrong_shape_is_rescored_even_with_a_matching_record(reference, interrupted, tmp_path, cli):
    """A shard whose record was rewritten to match it: its arrays must still fit the plan."""
    out, staging = resumable(interrupted, tmp_path)
    arrays = {"token_ids": np.zeros((31, 10), np.int32), "log_probs": np.zeros((31, 10), np.float32),
              "scores": np.zeros((31, 10), np.float32)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (staging / "shard-0003.npz").write_bytes(buffer.getvalue())
    record_path = staging / "shard-0003.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record.update(bytes=len(buffer.getvalue()), sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
                  arrays={name: {"shape": [31, 10], "dtype": str(a.dtype)} for name, a in arrays.items()})
    record_path.write_text(json.dumps(record), encoding="utf-8")
    rerun_recovers(out, reference, cli, {"shard-0003.npz": "the plan needs (30, 10)"})


def test_shard_copied_over_another_of_the_same_shape_is_rescored(reference, interrupted, tmp_path, cli):
    out, staging = resumable(interrupted, tmp_path)
    shutil.copyfile(staging / "shard-0000.npz", staging / "shard-0001.npz")  # both (30, 10), same size
    assert (staging / "shard-0000.npz").stat().st_size == (staging / "shard-0001.npz").stat().st_size
    rerun_recovers(out, reference, cli, {"shard-0001.npz": "sha256 differs"})


def test_foreign_and_misplaced_shards_are_discarded(reference, interrupted, tmp_path, cli):
    """A shard with no record of this run (copied in, or saved by a run killed before its
    record), and one whose index is not in the plan, are not trusted."""
    out, staging = resumable(interrupted, tmp_path)
    (staging / "shard-0000.json").unlink()
    shutil.copyfile(staging / "shard-0002.npz", staging / "shard-0099.npz")
    shutil.copyfile(staging / "shard-0002.json", staging / "shard-0099.json")
    rerun_recovers(out, reference, cli, {"shard-0000.npz": "no checksum of this run was recorded",
                                         "shard-0099.npz": f"not in this run's plan of {N_SHARDS} shards"})


def test_full_disk_while_saving_a_shard_is_one_line_and_resumable(reference, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    write = shards.write_durably

    def disk_fills_at_shard_2(path, data):
        if path.name.startswith("shard-0001.npz"):
            path.write_bytes(data[: len(data) // 3])  # what fit before the disk filled
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, data)

    monkeypatch.setattr(shards, "write_durably", disk_fills_at_shard_2)
    code, stdout, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 2 and "Traceback" not in stderr
    lines = message_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: no space left on the disk of {staging_folder(out)} to save shard 2 of 5 (")
    assert " needed, " in lines[0] and " free" in lines[0] and "resume from the 1 shard(s) saved" in lines[0]
    assert sorted(p.name for p in staging_folder(out).iterdir()) == [
        "lock", "shard-0000.json", "shard-0000.npz", "state.json"]  # no half-written file
    assert not out.exists()
    monkeypatch.undo()
    rerun_recovers(out, reference, cli, {}, saved=1)


def test_full_disk_while_writing_the_result_is_one_line_and_resumable(reference, interrupted, tmp_path,
                                                                      monkeypatch, cli):
    out, _ = resumable(interrupted, tmp_path)  # the disk fills once the last shard is scored
    write = run.write_predictions

    def disk_fills(path, tables):
        path.write_bytes(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run, "write_predictions", disk_fills)
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 2 and "Traceback" not in stderr
    lines = [line for line in message_lines(stderr) if not line.startswith("resuming: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: no space left on the disk of {tmp_path} while writing {out} (")
    assert " written, " in lines[0] and " free" in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".run.tmp-*"))  # no half-written result
    assert len(list(staging_folder(out).glob("shard-*.npz"))) == N_SHARDS
    monkeypatch.setattr(run, "write_predictions", write)
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 0, stderr
    assert f"resuming: {N_SHARDS} of {N_SHARDS} shards done" in stderr
    assert_same_results(out, reference)


def test_ctrl_c_while_loading_the_model_is_one_line_and_leaves_nothing(tiny_dir, tmp_path, monkeypatch, cli):
    out = tmp_path / "new" / "nested" / "run"  # folders the run makes for its output

    def interrupted(*args, **kwargs):
        assert staging_folder(out).is_dir()  # the lock is held by now
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "load_masked_lm", interrupted)
    code, stdout, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == run.INTERRUPTED_EXIT_CODE
    assert [line for line in stderr.splitlines() if line.strip()] == [
        "interrupted while loading, before scoring; nothing was written"]
    assert list(tmp_path.iterdir()) == []  # staging folder and the folders made for it removed


def test_ctrl_c_while_importing_torch_is_one_line(tmp_path):
    """The real process, stopped by SIGINT while it imports torch (delivered by an import hook,
    so at a known point, not after some delay)."""
    code = ("import importlib.abc, os, runpy, signal, sys\n"
            "class Interrupt(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'torch':\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            "        return None\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "sys.argv = ['probing.run', '--model', 'tiny-xlmr', '--completions', 'token', '--output_dir', sys.argv[1]]\n"
            "runpy.run_module('probing.run', run_name='__main__', alter_sys=True)\n")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == run.INTERRUPTED_EXIT_CODE, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        "interrupted while starting; nothing was written"]
    assert list(tmp_path.iterdir()) == []


def test_a_held_lock_refuses_before_the_model_loads(tiny_dir, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    first = ShardStore(out)
    first.lock()  # a run into the same place, still loading its model
    monkeypatch.setattr(models, "load_masked_lm", never_load)
    try:
        code, stdout, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
        assert code == 2 and stdout == ""
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: another probing run is writing {out}"), stderr
        assert sorted(p.name for p in first.folder.iterdir()) == ["lock"]  # the first run's folder is left alone
        assert not out.exists()
    finally:
        first.remove()
    assert list(tmp_path.iterdir()) == []


def test_read_only_result_folder_is_refused_before_any_work(tiny_dir, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    out.mkdir()
    (out / "profiles.csv").write_text("old\n", encoding="utf-8")
    # an earlier result of probing.run (its manifest lists what it wrote), so --overwrite may replace it
    (out / "manifest.json").write_text(json.dumps({"command": ["python", "-m", "probing.run"],
                                                  "outputs": {"profiles.csv": {}}}), encoding="utf-8")
    real_access = os.access

    def access(path, mode, **kwargs):
        """os.access as a non-root user sees it: root ignores the mode bits, tests may run as root."""
        if mode & os.W_OK and not os.stat(path).st_mode & stat.S_IWUSR:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(models, "load_masked_lm", never_load)
    out.chmod(0o555)
    try:
        code, stdout, stderr = cli(run.main, [*ARGS, "--output_dir", str(out), "--overwrite"])
        assert code == 2
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"cannot replace {out}: {out} is read-only" in lines[0], stderr
        assert f"chmod -R u+w {out}" in lines[0] and "--output_dir" in lines[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging, no .run.old-* copy
        assert (out / "profiles.csv").read_text(encoding="utf-8") == "old\n"

        # a folder made read-only after the early check: refused before it is replaced, nothing left
        out.chmod(0o755)
        (out / "sub").mkdir()
        with pytest.raises(UserError, match="is read-only"):
            with AtomicFolder(out) as staging:
                (staging / "profiles.csv").write_text("new\n", encoding="utf-8")
                (out / "sub").chmod(0o555)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
        assert (out / "profiles.csv").read_text(encoding="utf-8") == "old\n"
    finally:
        out.chmod(0o755)
        if (out / "sub").exists():
            (out / "sub").chmod(0o755)


def test_shard_damaged_after_the_check_is_one_line_then_rescored(reference, interrupted, tmp_path, monkeypatch,
                                                                 cli):
    """ShardStore.load checks again: a shard changed while the tables are built is an error
    (not a traceback nor a wrong table), and the rerun scores it again."""
    out, staging = resumable(interrupted, tmp_path)
    opened = ShardStore.open

    def open_then_damage(self, *args, **kwargs):
        done = opened(self, *args, **kwargs)
        (self.folder / "shard-0002.npz").write_bytes(b"garbage")
        return done

    monkeypatch.setattr(ShardStore, "open", open_then_damage)
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 2 and "Traceback" not in stderr
    lines = message_lines(stderr)
    assert lines[-1].startswith(f"error: the shard file {staging / 'shard-0002.npz'} changed"), stderr
    assert not [line for line in lines[:-1] if not line.startswith("resuming: ")]
    assert not out.exists() and not list(tmp_path.glob(".run.tmp-*"))
    monkeypatch.undo()
    # the failed run had scored the last shard before building the tables: all 5 were saved
    rerun_recovers(out, reference, cli, {"shard-0002.npz": "were recorded when it was saved"}, saved=N_SHARDS)
