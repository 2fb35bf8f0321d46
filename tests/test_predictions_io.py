"""predictions.parquet: written and read back unchanged; anything else is refused with one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probing.errors import UserError
from probing.predictions import PREDICTION_COLUMNS, SCHEMA, read_predictions, write_predictions


def tiny_table():
    import pyarrow as pa

    strings = {name: pa.array(["a", "b", "a"]).dictionary_encode() for name in SCHEMA.names
               if pa.types.is_dictionary(SCHEMA.field(name).type)}
    numbers = {"rank": pa.array([1, 2, 1], pa.int16()), "token_id": pa.array([5, 9, 5], pa.int32()),
               "n_pieces": pa.array([1, 3, 1], pa.int8()),
               "log_prob": pa.array([-1.5, -2.25, -1.5], pa.float32()),
               "score": pa.array([-1.5, -2.25, -1.5], pa.float32()), "kept": pa.array([True, False, True])}
    return pa.Table.from_arrays([{**strings, **numbers}[name] for name in SCHEMA.names], schema=SCHEMA)


def test_round_trip_keeps_values_and_types(tmp_path):
    path = tmp_path / "predictions.parquet"
    rows, seconds = write_predictions(path, [tiny_table(), tiny_table()])
    assert rows == 6 and seconds >= 0
    table = read_predictions(tmp_path)  # a run folder works too
    assert list(table.columns) == PREDICTION_COLUMNS
    assert table["rank"].tolist() == [1, 2, 1, 1, 2, 1]
    assert str(table["rank"].dtype) == "int16" and str(table["token_id"].dtype) == "int32"
    assert str(table["n_pieces"].dtype) == "int8" and table["n_pieces"].tolist() == [1, 3, 1] * 2
    np.testing.assert_array_equal(table["log_prob"].to_numpy(), np.float32([-1.5, -2.25, -1.5] * 2))
    assert isinstance(table["word"].dtype, pd.CategoricalDtype)
    assert table["word"].astype(str).tolist() == ["a", "b", "a"] * 2


@pytest.mark.parametrize("case, message", [
    ("foreign_parquet", "not a predictions table written by python -m probing.run"),
    ("not_parquet", "cannot read"),
    ("folder_without_it", "does not exist"),
])
def test_other_files_are_refused(case, message, tmp_path):
    path = tmp_path / "predictions.parquet"
    if case == "foreign_parquet":
        pd.DataFrame({"language": ["en"], "score": [0.5]}).to_parquet(path)
    elif case == "not_parquet":
        path.write_text("language,score\nen,0.5\n", encoding="utf-8")
    else:
        path = tmp_path
    with pytest.raises(UserError, match=message) as error:
        read_predictions(path)
    assert "\n" not in str(error.value)


def test_probing_predictions_given_to_fairness_is_one_line_exit_2(tmp_path, cli):
    from analysis import fairness

    write_predictions(tmp_path / "predictions.parquet", [tiny_table()])
    out = tmp_path / "out"
    code, _, stderr = cli(fairness.main, [str(tmp_path / "predictions.parquet"), "--output_dir", str(out)])
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "lacks column" in lines[0]
    assert not out.exists()


def test_filtered_read_returns_only_the_matching_rows_and_columns(tmp_path):
    write_predictions(tmp_path / "predictions.parquet", [tiny_table(), tiny_table()])
    table = read_predictions(tmp_path, columns=["word", "rank", "log_prob"], filters=[("word", "=", "b")])
    assert list(table.columns) == ["word", "rank", "log_prob"]
    assert table["rank"].tolist() == [2, 2]
    assert table["log_prob"].tolist() == [-2.25, -2.25]
    assert read_predictions(tmp_path, filters=[("word", "in", ["a"]), ("rank", "=", 2)]).empty
