"""Interrupted runs resume from their last complete shard and give the uninterrupted run's results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from probing import run
from probing.predictions import read_predictions
from probing.shards import ShardStore, plan_shards, staging_folder

ROOT = Path(__file__).resolve().parent.parent
# en + fr, 36 gender and religion groups (~180 sentences per language), in shards of at most 60
# sentences: three or more shards per language
ARGS = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "fr", "--categories", "gender", "religion",
        "--top_k", "25", "--shard_sentences", "60", "--quiet"]


@pytest.fixture(scope="module")
def reference(tiny_dir, tmp_path_factory):
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert run.main([*ARGS, "--output_dir", str(out)]) == 0
    return out


def assert_same_results(out: Path, reference: Path):
    assert (out / "profiles.csv").read_bytes() == (reference / "profiles.csv").read_bytes()
    assert (out / "filters.csv").read_bytes() == (reference / "filters.csv").read_bytes()
    pd.testing.assert_frame_equal(read_predictions(out), read_predictions(reference))


def interrupt_after(monkeypatch, n_shards: int):
    """Make the run stop as Ctrl-C would, once ``n_shards`` shards are saved."""
    original = ShardStore.save
    calls = []

    def save(self, index, *arrays):
        original(self, index, *arrays)
        calls.append(index)
        if len(calls) == n_shards:
            raise KeyboardInterrupt

    monkeypatch.setattr(ShardStore, "save", save)


def test_plan_keeps_groups_whole_and_languages_apart():
    from types import SimpleNamespace

    prompts = [SimpleNamespace(language=lang, group_id=g) for lang in ("en", "fr") for g in "aabbbc"]
    plan = plan_shards(prompts, 4)
    assert [(s.language, s.start, s.stop) for s in plan] == [
        ("en", 0, 2), ("en", 2, 6), ("fr", 6, 8), ("fr", 8, 12)]
    assert [(s.start, s.stop) for s in plan_shards(prompts, 2)][:3] == [(0, 2), (2, 5), (5, 6)]  # a big group alone


def test_ctrl_c_then_rerun_resumes_and_matches(reference, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 2)
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == run.INTERRUPTED_EXIT_CODE
    assert "interrupted: 2 of" in stderr and "again to resume" in stderr
    assert not out.exists()
    assert len(list(staging_folder(out).glob("shard-*.npz"))) == 2
    monkeypatch.undo()

    code, stdout, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 0, stderr
    total = len(plan_shards_of(reference))
    assert f"resuming: 2 of {total} shards done" in stderr
    assert_same_results(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # staging folder removed


def plan_shards_of(reference: Path):
    import json

    manifest = json.loads((reference / "manifest.json").read_text(encoding="utf-8"))
    return range(manifest["shards"]["planned"])


# A process that kills itself (SIGKILL: no handler, no clean-up) as soon as its first shard is saved:
# a real crash at a fixed point, so the test does not race the run (CI may be busy).
CRASH_AFTER_FIRST_SHARD = """
import os, signal, sys
from probing import run, shards
save = shards.ShardStore.save
def save_then_crash(self, *args, **kwargs):
    save(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
shards.ShardStore.save = save_then_crash
sys.exit(run.main(sys.argv[1:]))
"""


def test_killed_process_resumes(reference, tmp_path):
    """A real crash: the process is killed (SIGKILL) right after its first shard is on disk."""
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_FIRST_SHARD, *ARGS, "--output_dir", str(out)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    done = len(list(staging_folder(out).glob("shard-*.npz")))
    assert done == 1 < len(plan_shards_of(reference))

    command = [sys.executable, "-m", "probing.run", *ARGS, "--output_dir", str(out)]
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert f"resuming: {done} of" in finished.stderr
    # the process ends without finalising the interpreter (probing.run.exit_at_once): its piped
    # output must still arrive whole
    assert finished.stdout.startswith("wrote ") and finished.stdout.rstrip().splitlines()[-1].startswith("kept ")
    assert_same_results(out, reference)


def test_damaged_and_half_written_shards_are_redone(reference, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 3)
    assert cli(run.main, [*ARGS, "--output_dir", str(out)])[0] == run.INTERRUPTED_EXIT_CODE
    monkeypatch.undo()
    staging = staging_folder(out)
    (staging / "shard-0001.npz").write_bytes(b"not an npz")  # damaged
    (staging / "shard-0003.npz.tmp").write_bytes(b"half")  # killed mid-write
    stale = tmp_path / ".run.tmp-abc123"  # a result folder a killed run was writing
    stale.mkdir()
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 0, stderr
    assert "discarding the interrupted or damaged shard file shard-0001.npz" in stderr
    assert "resuming: 2 of" in stderr
    assert_same_results(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_other_engine_options_start_over(reference, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 1)
    assert cli(run.main, [*ARGS, "--output_dir", str(out)])[0] == run.INTERRUPTED_EXIT_CODE
    monkeypatch.undo()
    other = [a if a != "25" else "20" for a in ARGS]  # --top_k 20
    code, _, stderr = cli(run.main, [*other, "--output_dir", str(out)])
    assert code == 0, stderr
    assert "discarding 1 shard file(s)" in stderr and "engine.top_k" in stderr
    assert "resuming" not in stderr
    assert set(read_predictions(out).groupby(["language", "group_id", "template_id"], observed=True).size()) == {20}


def test_options_after_the_engine_reuse_the_shards(reference, tmp_path, monkeypatch, cli):
    """Weighting, lexicon and word filters act on saved arrays: the shards stay valid."""
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 1)
    assert cli(run.main, [*ARGS, "--output_dir", str(out)])[0] == run.INTERRUPTED_EXIT_CODE
    monkeypatch.undo()
    code, _, stderr = cli(run.main, [*ARGS, "--weighting", "probability", "--min_zipf", "3", "--output_dir", str(out)])
    assert code == 0, stderr
    assert "resuming: 1 of" in stderr
    predictions = read_predictions(out)
    pd.testing.assert_series_equal(predictions["log_prob"], read_predictions(reference)["log_prob"])


def test_a_run_in_progress_locks_its_staging_folder(tiny_dir, tmp_path, cli):
    import fcntl

    out = tmp_path / "run"
    staging = staging_folder(out)
    staging.mkdir()
    with open(staging / "lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip() and "random weights" not in line]
    assert len(lines) == 1 and "another probing run is writing" in lines[0]
    assert not out.exists()


def test_ctrl_c_while_writing_the_tables_keeps_every_shard(reference, tmp_path, monkeypatch, cli):
    out = tmp_path / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "assemble", interrupted)
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == run.INTERRUPTED_EXIT_CODE and "interrupted while writing the tables" in stderr
    assert not out.exists() and not list(tmp_path.glob(".run.tmp-*"))
    monkeypatch.undo()
    total = len(plan_shards_of(reference))
    code, _, stderr = cli(run.main, [*ARGS, "--output_dir", str(out)])
    assert code == 0, stderr
    assert f"resuming: {total} of {total} shards done" in stderr
    assert_same_results(out, reference)
