"""Issue 17, bad inputs: each one is refused by the real command line with one line on stderr naming
the fix and exit code 2, no traceback, no partial output and nothing written."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import one_line_error, profiles, write_run

from analysis import correlate, explore, figures, identity_sets
from probing import run as probing_run
from probing.lexicon import EMOTIONS
from probing.prompts import PROMPTS_DIR

FAST_CORRELATE = ["--permutations", "9", "--bootstrap", "0"]


def refused(result, *fragments) -> str:
    """Assert a one-line user error with nothing on stdout; return the line."""
    code, stdout, stderr = result
    line = one_line_error(code, stderr)
    assert stdout == "", stdout  # nothing printed before the refusal
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def no_server(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(explore.os, "execv", refuse)


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# probing.run: the NRC lexicon file and the prompt files
# ---------------------------------------------------------------------------------------------

def probe(tmp_path, *argv):
    return [*argv, "--languages", "en", "--output_dir", str(tmp_path / "out")]


def test_empty_nrc_file_is_refused(tmp_path, cli):
    lexicon = tmp_path / "NRC.txt"
    lexicon.write_text("", encoding="utf-8")
    refused(cli(probing_run.main, probe(tmp_path, "--lexicon", f"nrc:{lexicon}")), str(lexicon), "is empty",
            "--lexicon nrc:PATH")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra", [1, -1], ids=["longer_row", "shorter_row"])
def test_ragged_nrc_file_is_refused(extra, tmp_path, cli):
    header = ["English Word", *EMOTIONS, "French"]
    rows = [["happy", *["0"] * 4, "1", *["0"] * 4, "1", "heureux"],
            ["sad", *["0"] * 5, "1", *["0"] * 3, "1", "triste"]]
    rows[1] = rows[1] + ["extra"] if extra > 0 else rows[1][:-1]
    lexicon = tmp_path / "NRC.txt"
    lexicon.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    fields = len(header) + extra
    refused(cli(probing_run.main, probe(tmp_path, "--lexicon", f"nrc:{lexicon}")),
            f"{lexicon} line 3 has {fields} tab-separated fields where line 1 has {len(header)}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("version", ['"two"', "2.5", "0", "true"])
def test_prompt_file_version_that_is_not_a_whole_number_is_refused(version, tmp_path, cli):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    text = (PROMPTS_DIR / "en.yaml").read_text(encoding="utf-8")
    line = text.splitlines().index("version: 2") + 1
    (prompts / "en.yaml").write_text(text.replace("version: 2\n", f"version: {version}\n", 1), encoding="utf-8")
    refused(cli(probing_run.main, probe(tmp_path, "--prompts_dir", str(prompts))),
            f"{prompts / 'en.yaml'}:{line}: version must be a whole number, 1 or more")
    assert not (tmp_path / "out").exists()


def test_frames_file_version_that_is_not_a_whole_number_is_refused(tmp_path, cli):
    """The identity frames (analysis.identity_sets) read ``version`` as the prompt files do."""
    frames = tmp_path / "frames"
    frames.mkdir()
    text = (identity_sets.FRAMES_DIR / "en.yaml").read_text(encoding="utf-8")
    (frames / "en.yaml").write_text(text.replace("version: 2\n", 'version: "two"\n', 1), encoding="utf-8")
    out = tmp_path / "out"
    refused(cli(identity_sets.main, ["--languages", "en", "--frames_dir", str(frames), "--output_dir", str(out)]),
            f"{frames / 'en.yaml'}:4: version must be a whole number, 1 or more", "got 'two'")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Profiles tables: analysis.correlate, analysis.figures, analysis.explore
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def runs(tmp_path):
    return write_run(tmp_path / "base", profiles(0)), write_run(tmp_path / "ft", profiles(1))


def spoil(folder: Path, value: str, column: str = "joy", row: int = 3) -> Path:
    """Write ``value`` into one cell of the folder's profiles.csv (as text, exactly)."""
    path = folder / "profiles.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row, column] = value
    table.to_csv(path, index=False)
    return path


BAD_VALUES = ["inf", "1e308", "-0.25", "1.5", "nan", "high"]


def shown(value: str) -> str:
    """How the message quotes a cell: as read (a number is parsed, 1e308 -> 1e+308)."""
    try:
        return str(float(value))
    except ValueError:
        return value


@pytest.mark.parametrize("value", BAD_VALUES)
def test_correlate_refuses_profile_values_outside_0_1(value, runs, tmp_path, cli):
    base, ft = runs
    path = spoil(ft, value)
    out = tmp_path / "out"
    refused(cli(correlate.main, [str(base), str(ft), *FAST_CORRELATE, "--output_dir", str(out)]),
            f"{path}: column joy, line 5, holds '{shown(value)}'", "numbers in [0, 1]")
    assert not out.exists()


@pytest.mark.parametrize("value", BAD_VALUES)
def test_figures_refuses_profile_values_outside_0_1(value, runs, tmp_path, cli):
    base, _ = runs
    path = spoil(base, value, column="trust", row=0)
    out = tmp_path / "out"
    refused(cli(figures.main, [str(base), "--formats", "png", "--output_dir", str(out)]),
            f"{path}: column trust, line 2, holds '{shown(value)}'")
    assert not out.exists()


@pytest.mark.parametrize("value", ["inf", "1e308", "-0.25"])
def test_explore_refuses_profile_values_outside_0_1(value, runs, cli, no_server):
    base, _ = runs
    path = spoil(base, value)
    before = listing(base)
    refused(cli(explore.main, [str(base)]), f"{path}: column joy, line 5")
    assert listing(base) == before


def test_empty_cells_are_undefined_profiles_and_accepted(runs, tmp_path, cli):
    base, ft = runs
    for emotion in EMOTIONS:
        spoil(ft, "", column=emotion, row=0)
    out = tmp_path / "out"
    code, _, stderr = cli(correlate.main, [str(base), str(ft), *FAST_CORRELATE, "--output_dir", str(out)])
    assert code == 0, stderr
    assert (out / "correlations.csv").is_file()


@pytest.mark.parametrize("command", ["figures", "explore", "correlate"])
def test_profiles_missing_emotion_columns_are_refused(command, runs, tmp_path, cli, no_server):
    base, ft = runs
    path = base / "profiles.csv"
    pd.read_csv(path).drop(columns=["joy", "trust"]).to_csv(path, index=False)
    out = tmp_path / "out"
    argv = {"figures": [str(base), "--formats", "png", "--output_dir", str(out)],
            "explore": [str(base)],
            "correlate": [str(base), str(ft), *FAST_CORRELATE, "--output_dir", str(out)]}[command]
    main = {"figures": figures.main, "explore": explore.main, "correlate": correlate.main}[command]
    refused(cli(main, argv), f"{path} lacks column(s) joy, trust", "pass the profiles.csv that python -m probing.run")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# analysis.explore: every table it shows, and its port
# ---------------------------------------------------------------------------------------------

def recall_table() -> pd.DataFrame:
    return pd.DataFrame([{"run": "base", "language": "en", "level": level, "category": "all", "k": k, "recall": 0.1,
                          "n": 10, "recalled": 1, "n_groups": 4, "ci_low": 0.0, "ci_high": 0.2}
                         for level in ("row", "group") for k in (1, 10)])


@pytest.mark.parametrize("column", ["k", "recalled"])
def test_explore_refuses_recall_table_without_its_columns_before_serving(column, tmp_path, cli, no_server):
    folder = write_run(tmp_path / "rec", recall_table().drop(columns=column), "recall.csv")
    before = listing(folder)
    refused(cli(explore.main, [str(folder)]), f"{folder / 'recall.csv'} lacks column(s) {column}",
            "pass the recall.csv that python -m analysis.recall wrote")
    assert listing(folder) == before


@pytest.mark.parametrize("name, column", [("correlations.csv", "reference"), ("shifts.csv", "shift"),
                                          ("excluded.csv", "reason")])
def test_explore_refuses_correlate_tables_without_their_columns(name, column, runs, tmp_path, cli, no_server):
    base, ft = runs
    out = tmp_path / "corr"
    code, _, stderr = cli(correlate.main, [str(base), str(ft), *FAST_CORRELATE, "--output_dir", str(out)])
    assert code == 0, stderr
    table = pd.read_csv(out / name)
    if table.empty:  # excluded.csv may have no rows; give it one
        table = pd.DataFrame([{"comparison": "base_vs_ft", "language": "en", "category": "gender",
                               "group_id": "x", "group": "x", "reason": "only in base"}])
    table.drop(columns=column).to_csv(out / name, index=False)
    refused(cli(explore.main, [str(out)]), f"{out / name} lacks column(s) {column}", "python -m analysis.correlate")


def test_explore_refuses_a_busy_port_without_printing_a_url(runs, cli, no_server):
    base, _ = runs
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        refused(cli(explore.main, [str(base), "--port", str(port)]), f"port {port} on 127.0.0.1 is already in use",
                "--port")


def test_explore_serves_on_a_free_port(runs, cli, monkeypatch):
    base, _ = runs
    calls = []
    monkeypatch.setattr(explore.os, "execv", lambda path, command: calls.append(command))
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    code, stdout, stderr = cli(explore.main, [str(base), "--port", str(port)])
    assert code == 0, stderr
    assert f"http://localhost:{port}" in stdout and len(calls) == 1


def test_explore_refuses_an_address_it_cannot_listen_on(runs, cli, no_server):
    base, _ = runs
    refused(cli(explore.main, [str(base), "--address", "192.0.2.1"]), "cannot listen on 192.0.2.1", "--address")


def test_figures_numbers_are_checked_before_anything_is_drawn(runs, tmp_path, cli):
    """A good run and a bad one: the command refuses, nothing of the good one is written either."""
    base, ft = runs
    spoil(ft, "2")
    out = tmp_path / "out"
    refused(cli(figures.main, [str(base), str(ft), "--formats", "png", "--output_dir", str(out)]),
            f"{ft / 'profiles.csv'}: column joy, line 5, holds '2.0'")
    assert not out.exists()
