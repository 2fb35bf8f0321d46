"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yaml_agrees_with_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = pyproject["dependencies"] + pyproject["optional-dependencies"]["dev"]
    environment = yaml.safe_load((ROOT / "environment.yaml").read_text(encoding="utf-8"))
    assert environment["name"] == "stereoprobe"
    assert "python=3.11" in environment["dependencies"]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_specs = {requirement_name(s): s for s in pip}
    pyproject_specs = {requirement_name(s): s for s in declared}
    assert set(conda_specs) == set(pyproject_specs)
    for name, spec in pyproject_specs.items():
        if name != "torch":  # pinned to the local CPU wheel in environment.yaml
            assert conda_specs[name] == spec, name
    assert conda_specs["torch"] == "torch==2.13.0"


def test_results_are_git_ignored_but_their_readme():
    ignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "results/*" in ignore and "!results/README.md" in ignore
    assert (ROOT / "results" / "README.md").is_file()
