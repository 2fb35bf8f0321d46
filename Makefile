# `make test` and `make demo` each set up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo explore bench check-prompts clean-venv

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

# The whole study on tiny-xlmr (random weights: the numbers mean nothing, the plumbing is real):
# probe the base model, fine-tune it for a few steps on English text, probe the result, correlate
# the two runs' profiles; then the classifier study on the shipped demo data: a multi-task model
# (toxicity, sentiment, emotion, entities) and its single-task toxicity baseline from the same config
# (--tasks toxicity: same rows, split, seed and matched toxicity updates), compared on their shared
# held-out rows (extrinsic), their encoders' cross-lingual alignment against the base model on the
# identity sets (intrinsic), and the toxicity fairness of both, side by side; finally the figures and
# report.md from all the saved tables. --overwrite: a second `make demo` replaces the demo's own
# earlier results (and nothing else). --top_k 20: word mode rescores the longer words that compete
# for the top-k by the chain rule, and the fine-tuned model's top-200 has many (164 passes per
# sentence at top-200 against 5 at top-20, an hour on this CPU): the demo keeps to what a CPU does in
# minutes. The identity sets keep two categories (gender, religion: ~700 sentences a language) and
# alignment 200 parallel sentences, so the study part takes a few minutes on a CPU. To keep the whole
# demo under 10 minutes on two CPU cores, correlate runs 200 bootstrap resamples (1000 by default;
# its permutations adapt to each test and keep the defaults) and the figures are PNG only (PDF too
# by default): a study keeps the defaults.
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m probing.run --model tiny-xlmr --run_name demo-tiny-xlmr --top_k 20 --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m finetune.train --config finetune/configs/english.yaml \
		--base_model tiny-xlmr --output_name demo-english --max_steps 30 --eval_steps 10 \
		--max_length 64 --batch_size 8 --learning_rate 1e-3 --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m probing.run --finetuned_model demo-english --run_name demo-english --top_k 20 --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.correlate results/profiles/demo-tiny-xlmr \
		results/profiles/demo-english --output_dir results/analysis/demo-correlate --overwrite \
		--bootstrap 200
	HF_HUB_OFFLINE=1 $(PY) -m analysis.recall results/profiles/demo-tiny-xlmr \
		results/profiles/demo-english --output_dir results/analysis/demo-recall --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m finetune.train --config finetune/configs/multitask.yaml --base_model tiny-xlmr \
		--output_name demo-multitask --max_steps 30 --eval_steps 15 --batch_size 8 --learning_rate 1e-3 --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m finetune.train --config finetune/configs/multitask.yaml --base_model tiny-xlmr \
		--tasks toxicity --output_name demo-toxicity --max_steps 30 --eval_steps 15 --batch_size 8 \
		--learning_rate 1e-3 --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.compare_models --models demo-toxicity demo-multitask --split validation \
		--output_dir results/analysis/demo-compare --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.identity_sets --categories gender religion \
		--output_dir results/analysis/demo-identity --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.alignment --models tiny-xlmr demo-toxicity demo-multitask \
		--input results/analysis/demo-identity/identity_set.csv --max_items 200 \
		--output_dir results/analysis/demo-alignment --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.fairness --models demo-toxicity demo-multitask --compare \
		--identity_set results/analysis/demo-identity --output_dir results/analysis/demo-fairness --overwrite
	HF_HUB_OFFLINE=1 $(PY) -m analysis.figures results/profiles/demo-tiny-xlmr \
		results/profiles/demo-english results/analysis/demo-correlate results/analysis/demo-recall \
		results/analysis/demo-compare results/analysis/demo-alignment \
		results/analysis/demo-fairness/fairness_demo-toxicity results/analysis/demo-fairness/fairness_demo-multitask \
		results/analysis/demo-fairness/fairness_demo-toxicity_vs_demo-multitask \
		--output_dir results/analysis/demo-figures --formats png --overwrite

# The demo's outputs in the browser (run `make demo` first): http://localhost:8501
explore: $(STAMP)
	$(PY) -m analysis.explore results/profiles/demo-tiny-xlmr results/profiles/demo-english \
		results/analysis/demo-correlate results/analysis/demo-recall

# Every benchmark runs even when an earlier one fails a target; the exit status says whether any did.
# probe_speed --end_to_end: the whole CLI (load included) on a random xlm-roberta-base, en+fr, against
# the fill-mask pipeline (speed-up, identical top-k, peak RSS vs weights + 2.5 GB); probe_memory: peak RSS
# and time of tiny-xlmr runs on 2 and 8 languages; probe_speed: the engine alone (GFLOP/s, fast path);
# model_size: one multi-task model against the single-task models it replaces; word_search: word mode's top-k
# against exhaustive exact chain-rule scoring (identical on >= 99% of sentences). probe_speed --end_to_end and
# probe_memory run the CLI in token mode and in word mode (word mode within 5x token mode on tiny-xlmr).
# correlate_scale: analysis.correlate on 2,400 groups at its defaults (peak RSS within 1 GB of the same run
# without permutations and resamples).
bench: $(STAMP)
	@status=0; \
	for bench in "probe_speed.py --end_to_end" probe_memory.py probe_speed.py model_size.py word_search.py correlate_scale.py; do \
		echo "== benchmarks/$$bench"; \
		HF_HUB_OFFLINE=1 $(PY) benchmarks/$$bench || { status=1; echo "== benchmarks/$$bench: FAILED"; }; \
		echo; \
	done; \
	exit $$status

check-prompts: $(STAMP)
	$(PY) -m probing.prompts --check

clean-venv:
	rm -rf $(VENV)
