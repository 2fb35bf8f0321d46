"""Small synthetic tables for the analysis tests (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from probing.lexicon import EMOTIONS
from probing.run import PROFILE_COLUMNS

GROUPS = [  # (category, group_id)
    ("gender", "women"), ("gender", "men"), ("gender", "girls"), ("gender", "boys"), ("gender", "mothers"),
    ("religion", "muslims"), ("religion", "christians"), ("religion", "hindus"), ("religion", "atheists"),
]


def profiles(seed: int = 0, languages=("en", "fr"), model: str = "m", groups=GROUPS) -> pd.DataFrame:
    """A profiles.csv-shaped table with random profile values in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows = []
    for language in languages:
        for category, group_id in groups:
            values = rng.random(len(EMOTIONS)).round(4)
            rows.append({"model": model, "language": language, "category": category, "group_id": group_id,
                         "group": f"{group_id}-{language}", **dict(zip(EMOTIONS, values)),
                         "n_words": 10, "n_covered": 5})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def write_run(folder: Path, table: pd.DataFrame, name: str = "profiles.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / name, index=False)
    return folder


def one_line_error(code: int, stderr: str) -> str:
    """Assert the CLI failed as a user error (exit 2, one line, no traceback); return the line."""
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]
