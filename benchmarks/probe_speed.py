"""Speed of the probing engine against the transformers ``fill-mask`` pipeline, at full XLM-R size.

Run with ``make bench`` (both modes), or::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/probe_speed.py --end_to_end [--pipeline_sentences 60]
        [--no-check] [--threads N] [--layers 1 --hidden 64 --categories religion]   # smoke test
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/probe_speed.py [--sentences 500]
        [--pipeline_sentences 80] [--batch_size 64] [--precision fp32|bf16] [--threads N]

End to end (``--end_to_end``)
-----------------------------
* Builds the same random model as below (seed 0, xlm-roberta-base's shape, 278M parameters) and
  saves it with ``save_pretrained`` in a temp dir, with the genuine XLM-R tokenizer
  (:func:`probing.models.build_xlmr_tokenizer`) and a ``manifest.json`` saying
  ``random_weights: true``, as ``probing.models.build_tiny_xlmr`` does for tiny-xlmr. Its weight
  size is the bytes of its unique parameter tensors (the tied decoder counted once).
* Runs the whole CLI on it as a child process in **token mode**, everything included (Python
  start-up, imports, loading prompts, lexicons and the 1.1 GB model, probing, writing the tables)::

      python -m probing.run --model <dir> --top_k 200 --completions token --output_dir <tmp> --quiet \
          --languages en fr

  (all categories, the CLI's default batch size, fp32), with ``HF_HUB_OFFLINE=1``. Its wall time
  and its exact peak RSS come from ``os.wait4`` on the child (``benchmarks/measure.py``). Token
  mode (one token at one mask) is what the pipeline computes, so it is the run compared with it.
* Before it, the lemma tries of en and fr are built if this machine has none yet (a one-off cost of
  the first run that probes a language, ``probing.words``; not counted).
* Loads the saved model again in this process and times ``pipeline("fill-mask", top_k=200)``
  called one sentence at a time (after one warm-up call) on ``--pipeline_sentences`` (default 60)
  of the **same** sentences: every en+fr prompt the CLI probes, rendered by ``probing.prompts``
  with the tokenizer's mask token, each language shuffled with seed 0 and the two interleaved.
  Its rate is extrapolated to all of them; the pipeline's own load time is printed but not
  counted (which only makes the speed-up smaller).
* Then the same CLI run in **word mode** (``--completions word``: whole words of each language's
  candidate set, scored by the chain rule over their pieces, ``probing/word_scoring.py``), same
  model, sentences and options. Reported: its wall time, sentences per second, ratio to the
  token-mode run, peak RSS, and from its ``manifest.json`` ``completions.forward_passes`` (rows
  through the model: sentences and word-mode contexts) per sentence, the candidate set sizes and
  ``timings``.
* Checks (exit status 1 if one fails): the speed-up, extrapolated pipeline time over the
  token-mode CLI's wall time, is at least 15x; the peak RSS of each CLI run (token and word mode)
  is at most the weights plus 2.5 GB (GB = 10^9 bytes); and on the pipeline's sentences the
  token-mode CLI's top-200 (from ``predictions.parquet``, or ``predictions.csv`` with each
  ``token`` mapped back to its id) equals the pipeline's up to exact ties, as defined below.
  ``--no-check`` reports the speed-up and the peaks without failing on them (the agreement is
  always checked). ``--layers``/``--hidden`` (FFN 4x the width, heads of 64) and ``--categories``
  shrink both runs for smoke tests; the targets are meant for the defaults.
* An **estimate, not a measurement**, of a full word-mode study of xlm-roberta-base (every
  language in ``prompts/``, all categories) on one GPU, from the FLOP count below: the word-mode
  run's forward passes per en+fr sentence x the sentences of all languages (counted with
  ``probing.prompts``) x the FLOPs of one pass, i.e. ``engine_flops`` of one batch of that many
  rows at the mean token length of those sentences (XLM-R tokenizer, special tokens included),
  divided by assumed sustained rates of an H100/H200-class GPU: 100 TFLOP/s in bf16 and 30
  TFLOP/s in fp32 (``GPU_RATES``; assumptions, not measured). Approximations: every pass is
  counted as the encoder plus one full-vocabulary head row; in word mode a sentence's one-mask
  pass and each exact rescoring pass read one full-vocabulary row, and a first-stage pass with
  ``n`` masks reads ``n`` rows restricted to the longer candidates' pieces (~10-20% of the
  vocabulary each), so the head is over- rather than under-counted; a context with ``n`` masks is
  ``n - 1`` tokens longer than its sentence, which the mean sentence length leaves out (the
  encoder slightly under-counted); no padding; the passes per sentence come from en+fr only and
  from the random model, whose shortlist can hold no longer word at all (then the run makes the
  first stage's passes only, one per piece count, and the script says so): a trained model's
  shortlist adds exact-rescoring passes, so for it the estimate is a lower bound. Raw scoring
  (the CLI's default; typicality also scores each sentence's prior). Loading, building candidate
  sets and writing tables are not included.

Engine alone (default)
----------------------
* Builds a randomly initialised (seeded) ``XLMRobertaForMaskedLM`` with xlm-roberta-base's exact
  shape (12 layers, width 768, FFN 3072, vocabulary 250002: 278M parameters; speed does not depend
  on the weights, so no download is needed) and the genuine XLM-R tokenizer in a temp dir.
* Renders ``--sentences`` sentences from the shipped prompts of en, fr, es and el: each language's
  sentences are shuffled with a fixed seed and the languages interleaved round-robin, cycling if
  more are asked for than exist. The pipeline runs on the first ``--pipeline_sentences`` of them
  (so every language is in the subset too) and its rate is extrapolated.
* Times ``MaskedLMScorer(...).top_k(sentences, k=200)`` (with its default CPU fast path, oneDNN
  Linear layers, and with ``cpu_fast_path=False``) and ``pipeline("fill-mask", top_k=200)`` called
  one sentence at a time. Each is warmed up once first, then timed in one pass.
* Checks, on the sentences both ran, that the engine's top-200 equals the pipeline's up to exact
  ties, and that the fast path equals the plain path the same way (exit status 1 otherwise).
  Batching and padding change float rounding (~1e-7), so two candidates whose log-probs differ by
  less than ``TIE`` = 1e-5 may swap; this counts as agreement when the log-probability at every
  rank agrees within ``TIE``, every id in both top-k lists has the same log-probability within
  ``TIE`` in each, and any id in only one of them lies within ``TIE`` of the k-th log-probability
  (it only fell off the boundary by a tie).
* ``--precision bf16`` also runs the engine in bfloat16 and reports its agreement with fp32
  (mean overlap@200 and top-1 agreement); informational, not asserted.

FLOP count (analytical; multiply-adds count 2)
-----------------------------------------------
For each batch of ``B`` sentences padded to length ``T`` (the engine sorts by length, so ``T`` is
the batch's longest sentence), with ``h = 768``, ``f = 3072``, ``n_layers = 12``, ``V = 250002``::

    encoder   = n_layers * B * T * (2 * (4*h*h + 2*h*f)   # Q, K, V, output, FFN-in, FFN-out GEMMs
                                    + 4 * T * h)           # Q.K^T and attention.V
    mask head = B * 2 * (h*h + h*V)                         # dense + decoder at the mask only

summed over batches; embeddings, layer norms, GELU, biases, softmaxes and top-k are left out
(< 1% of the total). Padding positions are counted: they are work the engine does. The engine's
achieved GFLOP/s is that total over its wall time, compared with the machine's fp32 GEMM rate
measured on a representative shape, ``(B*T) x 768 @ 768 x 3072``, both with ``torch.matmul``
(MKL, torch's default on x86) and with oneDNN (what the engine's CPU fast path uses).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

TOP_K = 200
TIE = 1e-5
LANGUAGES = ("en", "fr", "es", "el")
E2E_LANGUAGES = ("en", "fr")
SEED = 0
HIDDEN, FFN, LAYERS, VOCAB = 768, 3072, 12, 250002
E2E_SPEEDUP_TARGET = 15.0
E2E_RSS_HEADROOM_GB = 2.5  # peak RSS at most the weights plus this (token and word mode)
GPU_RATES = {"bf16": 100.0, "fp32": 30.0}  # TFLOP/s, assumed sustained on an H100/H200-class GPU (not measured)


def xlmr_base_config(layers: int = LAYERS, hidden: int = HIDDEN):
    """xlm-roberta-base's shape; ``layers``/``hidden`` shrink it for smoke tests (FFN 4x, heads of 64)."""
    from transformers import XLMRobertaConfig

    heads = 12 if hidden == HIDDEN else max(1, hidden // 64)
    if hidden % heads:
        heads = 1
    return XLMRobertaConfig(
        vocab_size=VOCAB, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=FFN if hidden == HIDDEN else 4 * hidden,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )


def sample_sentences(n: int, mask_token: str) -> list[str]:
    """``n`` sentences, the four languages interleaved, each language shuffled with ``SEED``."""
    from probing.prompts import build_prompts, load_languages

    loaded = load_languages(list(LANGUAGES))
    per_language = []
    for lang in LANGUAGES:
        sentences = [p.sentence for p in build_prompts(loaded[lang], mask_token=mask_token)]
        random.Random(f"{SEED}-{lang}").shuffle(sentences)
        per_language.append(sentences)
    interleaved = [s for row in zip(*per_language) for s in row]
    for sentences in per_language:  # languages with more sentences than the shortest one
        interleaved += sentences[min(map(len, per_language)):]
    return [interleaved[i % len(interleaved)] for i in range(n)]


def batch_shapes(tokenizer, sentences: list[str], batch_size: int) -> list[tuple[int, int]]:
    """``(B, T)`` of each batch, as the engine forms them (sorted by length, then chunked)."""
    lengths = sorted(len(ids) for ids in tokenizer(sentences, add_special_tokens=True, truncation=True)["input_ids"])
    return [(len(chunk), max(chunk)) for chunk in
            (lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size))]


def engine_flops(shapes: list[tuple[int, int]]) -> float:
    """The analytical FLOP count of the module docstring."""
    total = 0.0
    for b, t in shapes:
        total += LAYERS * b * t * (2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) + 4 * t * HIDDEN)
        total += b * 2 * (HIDDEN * HIDDEN + HIDDEN * VOCAB)
    return total


def gemm_rates(m: int) -> tuple[float, float]:
    """GFLOP/s of fp32 ``(m, 768) @ (768, 3072)``: torch.matmul (MKL) and oneDNN; median of runs."""
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(m, HIDDEN, generator=gen)
    w = torch.randn(FFN, HIDDEN, generator=gen) * 0.02
    wt = w.t()

    def rate(fn) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(15):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 2 * m * HIDDEN * FFN / sorted(times)[len(times) // 2] / 1e9

    mkl = rate(lambda: torch.matmul(x, wt))
    try:
        onednn = rate(lambda: torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], ""))
    except (AttributeError, RuntimeError):
        onednn = float("nan")
    return mkl, onednn


def compare_top_k(ids_a, lps_a, ids_b, lps_b) -> tuple[bool, float, int]:
    """``(agree up to exact ties, max |log-prob diff| over ranks, ranks whose ids differ)``."""
    diff = float(np.max(np.abs(lps_a - lps_b)))
    differ = int(np.sum(ids_a != ids_b))
    boundary = min(lps_a[-1], lps_b[-1])
    lp_a, lp_b = dict(zip(ids_a.tolist(), lps_a)), dict(zip(ids_b.tolist(), lps_b))
    only = set(lp_a) ^ set(lp_b)
    same_id = all(abs(lp_a[i] - lp_b[i]) <= TIE for i in set(lp_a) & set(lp_b))
    ok = diff <= TIE and same_id and all(abs({**lp_b, **lp_a}[i] - boundary) <= TIE for i in only)
    return ok, diff, differ


def time_pipeline(model, tokenizer, sentences: list[str]):
    from transformers import pipeline

    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=TOP_K, device="cpu")
    fill(sentences[0])  # warm-up
    outputs = []
    start = time.perf_counter()
    for sentence in sentences:
        outputs.append(fill(sentence))
    seconds = time.perf_counter() - start
    results = [(np.array([o["token"] for o in out], dtype=np.int64),
                np.log(np.array([o["score"] for o in out], dtype=np.float64))) for out in outputs]
    return seconds, results


def time_engine(model, tokenizer, sentences: list[str], batch_size: int, dtype, fast_path: bool):
    from probing.engine import MaskedLMScorer

    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=batch_size, dtype=dtype,
                            progress=False, cpu_fast_path=fast_path)
    scorer.top_k(sentences[:batch_size], k=TOP_K)  # warm-up
    start = time.perf_counter()
    results = scorer.top_k(sentences, k=TOP_K)
    return time.perf_counter() - start, results, scorer.fast_path

def unique_parameter_bytes(model) -> int:
    """Bytes of the model's parameters, each tensor once (XLM-R's decoder shares the embeddings)."""
    seen, total = set(), 0
    for parameter in model.parameters():
        key = (parameter.untyped_storage().data_ptr(), parameter.storage_offset(), parameter.numel())
        if key not in seen:
            seen.add(key)
            total += parameter.numel() * parameter.element_size()
    return total


def build_random_model_dir(target: Path, config) -> tuple[int, int]:
    """Save a seeded random ``XLMRobertaForMaskedLM`` and the XLM-R tokenizer to ``target``.

    Marked ``random_weights`` in its ``manifest.json`` as ``build_tiny_xlmr`` marks tiny-xlmr.
    Returns ``(parameters, weight bytes)``; the model is freed before returning.
    """
    from transformers import XLMRobertaForMaskedLM

    from probing.models import REGISTRY_FILE, build_xlmr_tokenizer

    target.mkdir(parents=True)
    build_xlmr_tokenizer(target)
    torch.manual_seed(SEED)
    model = XLMRobertaForMaskedLM(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    weight_bytes = unique_parameter_bytes(model)
    model.save_pretrained(target)
    (target / REGISTRY_FILE).write_text(json.dumps({
        "name": target.name, "random_weights": True, "seed": SEED,
        "description": "randomly initialised XLMRobertaForMaskedLM (benchmarks/probe_speed.py --end_to_end)",
    }, indent=2), encoding="utf-8")
    del model
    gc.collect()
    return n_params, weight_bytes


def e2e_prompts(mask_token: str, categories: list[str] | None):
    """Every prompt the CLI probes for en+fr, and the pipeline's subset order: each language
    shuffled with ``SEED``, the two interleaved round-robin (the rest of the longer one after)."""
    from probing.prompts import build_prompts, load_languages

    loaded = load_languages(list(E2E_LANGUAGES))
    per_language = [build_prompts(loaded[lang], mask_token=mask_token, categories=categories)
                    for lang in E2E_LANGUAGES]
    everything = [p for prompts in per_language for p in prompts]
    shuffled = []
    for lang, prompts in zip(E2E_LANGUAGES, per_language):
        prompts = list(prompts)
        random.Random(f"{SEED}-{lang}").shuffle(prompts)
        shuffled.append(prompts)
    shortest = min(map(len, shuffled))
    order = [p for row in zip(*shuffled) for p in row] + [p for prompts in shuffled for p in prompts[shortest:]]
    return everything, order


def read_cli_top_k(output_dir: Path, tokenizer, keys: set[tuple[str, str, str]]):
    """``{(language, group_id, template_id): (sentence, ids, log-probs)}`` of the CLI's predictions,
    for ``keys`` only, ordered by rank. Reads ``predictions.parquet`` when the run wrote one, else
    ``predictions.csv`` (whose ``token`` strings are mapped back to ids with the tokenizer)."""
    import pandas as pd

    parquet, csv = output_dir / "predictions.parquet", output_dir / "predictions.csv"
    if parquet.is_file():
        table, source = pd.read_parquet(parquet), parquet.name
    elif csv.is_file():
        table = pd.read_csv(csv, usecols=["language", "group_id", "template_id", "sentence", "rank", "token",
                                          "log_prob"], dtype={"token": str}, keep_default_na=False)
        source = csv.name
    else:
        raise FileNotFoundError(f"no predictions.parquet or predictions.csv in {output_dir}")
    key = list(zip(table["language"], table["group_id"], table["template_id"]))
    table = table[[k in keys for k in key]]
    if "token_id" not in table.columns:
        table = table.assign(token_id=tokenizer.convert_tokens_to_ids(table["token"].tolist()))
    out = {}
    for k, rows in table.sort_values("rank").groupby(["language", "group_id", "template_id"], sort=False):
        out[tuple(k)] = (rows["sentence"].iloc[0], rows["token_id"].to_numpy(dtype=np.int64),
                         rows["log_prob"].to_numpy(dtype=np.float64))
    return out, source


def study_estimate(tokenizer, passes_per_sentence: float, first_stage_passes: int) -> dict:
    """The FLOP estimate of a full word-mode study of xlm-roberta-base (every language in
    ``prompts/``, all categories) from the word-mode run's forward passes per sentence; see the
    module docstring."""
    from probing.prompts import build_prompts, load_languages

    loaded = load_languages(None)
    sentences = [p.sentence for prompts in loaded.values()
                 for p in build_prompts(prompts, mask_token=tokenizer.mask_token)]
    lengths = [len(ids) for ids in tokenizer(sentences, add_special_tokens=True, truncation=True)["input_ids"]]
    mean_tokens = sum(lengths) / len(lengths)
    passes = passes_per_sentence * len(sentences)
    flops = engine_flops([(passes, mean_tokens)])  # one full-vocabulary head row per pass (see the docstring)
    return {"languages": list(loaded), "sentences": len(sentences), "mean_tokens": mean_tokens,
            "passes_per_sentence": passes_per_sentence, "first_stage_passes": first_stage_passes,
            "passes": passes, "flops": flops}


def print_study_estimate(estimate: dict, restricted: bool) -> None:
    flops = estimate["flops"]
    per_pass = flops / estimate["passes"]
    times = ", ".join(f"{flops / (rate * 1e12):.1f} s at {rate:.0f} TFLOP/s {name}" for name, rate in GPU_RATES.items())
    print(f"  estimate, a full {len(estimate['languages'])}-language word-mode study of xlm-roberta-base on one GPU "
          f"(from the FLOP count, not measured): {estimate['passes_per_sentence']:.2f} passes per sentence "
          f"(this run's, {'+'.join(E2E_LANGUAGES)}) x {estimate['sentences']:,} sentences "
          f"({' '.join(estimate['languages'])}, all categories) x {per_pass / 1e9:.2f} GFLOP per pass (encoder at the "
          f"mean {estimate['mean_tokens']:.1f} tokens + one full-vocabulary head row) = {flops / 1e12:.1f} TFLOP: "
          f"{times} (assumed sustained rates of an H100/H200-class GPU; loading, candidate sets and tables "
          f"not included)")
    if estimate["passes_per_sentence"] <= estimate["first_stage_passes"] + 1e-9:
        print(f"  (no exact-rescoring passes in this run: {estimate['first_stage_passes']} per sentence is the first "
              f"stage alone, one pass per piece count; with random weights the shortlist can hold no longer word. A "
              f"trained model's shortlist adds rescoring passes: for it the estimate is a lower bound)")
    if restricted:
        print("  (smoke test: the passes per sentence come from a shrunk model or a subset of categories; the "
              "estimate is meant for the defaults)")


def run_cli(model_dir: Path, output_dir: Path, completions: str, categories, tmp: Path, env):
    """The CLI on en+fr in ``completions`` mode as a measured child process, or None (said) if it fails."""
    from measure import probe_command, run_measured

    command = probe_command(str(model_dir), output_dir, languages=list(E2E_LANGUAGES), top_k=TOP_K,
                            completions=completions, categories=categories)
    print(f"cli, {completions} mode: {' '.join(['python', *command[1:]])}")
    result = run_measured(command, log_dir=tmp / "logs", name=f"cli-{completions}", env=env)
    if result.returncode != 0:
        print(f"FAILED: the {completions}-mode CLI exited with {result.returncode}:\n{result.tail()}", file=sys.stderr)
        return None
    return result


def end_to_end(args) -> int:
    """``--end_to_end``: the CLI as a child process against the pipeline on the same sentences."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from measure import GB, child_env, load_average, prediction_rows, run_completions, run_timings, warm_lemma_tries

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    shape_override = args.layers != LAYERS or args.hidden != HIDDEN
    restricted = shape_override or args.categories is not None
    n_subset = args.pipeline_sentences or 60
    env = child_env(**({"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
                       if args.threads else {}))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load_average()}")
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="probe_speed_e2e-") as tmp:
        tmp = Path(tmp)
        model_dir = tmp / (f"random-xlmr-l{args.layers}-h{args.hidden}" if shape_override else "random-xlmr-base")
        n_params, weight_bytes = build_random_model_dir(model_dir, xlmr_base_config(args.layers, args.hidden))
        if not shape_override:
            assert round(n_params / 1e6) == 278, n_params
        shape = (f"{args.layers} layers of width {args.hidden} (smoke test)" if shape_override
                 else "xlm-roberta-base shape")
        print(f"model: random XLMRobertaForMaskedLM, {shape}, {n_params:,} parameters, weights "
              f"{weight_bytes / GB:.3f} GB (seed {SEED}), saved to {model_dir} in {time.perf_counter() - started:.1f}s")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        prompts, order = e2e_prompts(tokenizer.mask_token, args.categories)
        subset = order[:n_subset]
        print(f"sentences: {len(prompts)} ({'+'.join(E2E_LANGUAGES)}, "
              f"{'categories ' + ' '.join(args.categories) if args.categories else 'all categories'}); "
              f"the pipeline runs on {len(subset)} of them (shuffled, languages interleaved)")

        # 1. The whole CLI, load included, as a child process (the lemma tries built first if this
        # machine has none: a one-off cost of the first run that probes a language, not counted).
        print(f"lemma tries of {'+'.join(E2E_LANGUAGES)} ready in {warm_lemma_tries(list(E2E_LANGUAGES)):.1f} s "
              f"(not counted)")
        output_dir = tmp / "run"
        load_before = load_average()
        cli = run_cli(model_dir, output_dir, "token", args.categories, tmp, env)
        if cli is None:
            return 1
        cli_rate = len(prompts) / cli.wall_s
        print(f"cli: {len(prompts)} sentences end to end in {cli.wall_s:.1f}s = {cli_rate:.2f} sent/s, "
              f"peak RSS {cli.peak_rss / GB:.3f} GB (load average before: {load_before})")
        phases = ", ".join(f"{name[:-2]} {value:.1f} s" for name, value in run_timings(output_dir).items())
        print(f"cli phases (its manifest): {phases}")
        rows = prediction_rows(output_dir)
        if rows is not None and rows != len(prompts) * TOP_K:
            print(f"note: the CLI's manifest records {rows} prediction rows, not {len(prompts)} x {TOP_K}")

        # 2. The fill-mask pipeline, one sentence per call, on the subset; its rate extrapolated.
        load_start = time.perf_counter()
        model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
        pipe_load_s = time.perf_counter() - load_start
        pipe_s, pipe_results = time_pipeline(model, tokenizer, [p.sentence for p in subset])
        pipe_rate = len(subset) / pipe_s
        pipe_all_s = len(prompts) / pipe_rate
        print(f"pipeline: {len(subset)} sentences one at a time in {pipe_s:.1f}s = {pipe_rate:.2f} sent/s; "
              f"extrapolated to {len(prompts)}: {pipe_all_s:.0f}s (+ {pipe_load_s:.1f}s to load, not counted)")
        del model
        gc.collect()

        # 3. The CLI's top-200 on the subset against the pipeline's, up to exact ties.
        keys = {(p.language, p.group_id, p.template_id) for p in subset}
        cli_top, source = read_cli_top_k(output_dir, tokenizer, keys)
        max_diff, swaps = 0.0, 0
        for prompt, (ids, lps) in zip(subset, pipe_results):
            key = (prompt.language, prompt.group_id, prompt.template_id)
            if key not in cli_top:
                failures.append(f"{key}: not in the CLI's {source}")
                continue
            sentence, cli_ids, cli_lps = cli_top[key]
            if sentence != prompt.sentence:
                failures.append(f"{key}: the CLI probed {sentence!r}, the pipeline {prompt.sentence!r}")
                continue
            if len(cli_ids) != TOP_K:
                failures.append(f"{key}: {len(cli_ids)} candidates in the CLI's {source}, expected {TOP_K}")
                continue
            ok, diff, differ = compare_top_k(cli_ids, cli_lps, ids, lps)
            max_diff, swaps = max(max_diff, diff), swaps + differ
            if not ok:
                failures.append(f"{key} {prompt.sentence!r}: CLI vs pipeline top-{TOP_K} differ beyond ties "
                                f"(max log-prob diff by rank {diff:.2e}, {differ} ranks with other ids)")
        agree = not failures
        print(f"agreement ({source}): CLI vs pipeline on {len(subset)} sentences: max |log-prob diff| "
              f"{max_diff:.2e}, {swaps} of {len(subset) * TOP_K} ranks swapped within ties")

        # 4. The same CLI run in word mode (whole words of each language's candidate set, chain rule).
        word_dir = tmp / "run-word"
        load_before = load_average()
        word = run_cli(model_dir, word_dir, "word", args.categories, tmp, env)
        if word is None:
            return 1
        word.timings = run_timings(word_dir)
        word_record = run_completions(word_dir)
        word_passes = word_record.get("forward_passes")
        if not isinstance(word_passes, int) or word_passes < 1:
            print(f"FAILED: the word-mode run's manifest records no completions.forward_passes ({word_passes!r})",
                  file=sys.stderr)
            return 1
        passes_per_sentence = word_passes / len(prompts)
        sizes = {lang: c.get("n") for lang, c in word_record.get("candidates", {}).items()}
        print(f"cli, word mode: {len(prompts)} sentences end to end in {word.wall_s:.1f}s = "
              f"{len(prompts) / word.wall_s:.2f} sent/s, peak RSS {word.peak_rss / GB:.3f} GB (load average before: "
              f"{load_before}); {word.wall_s / cli.wall_s:.2f}x the token-mode run's wall time")
        print(f"cli, word mode, its manifest: {word_passes} forward passes = {passes_per_sentence:.2f} per sentence; "
              f"candidates {', '.join(f'{lang} {n:,}' for lang, n in sizes.items())}; phases "
              + ", ".join(f"{name[:-2]} {value:.1f} s" for name, value in word.timings.items()))
        # the first stage: one pass per piece count that occurs (one mask, then n masks for each n > 1)
        first_stage = max((len(c.get("by_pieces", {})) for c in word_record.get("candidates", {}).values()), default=0)
        estimate = study_estimate(tokenizer, passes_per_sentence, first_stage)

    speedup = pipe_all_s / cli.wall_s
    rss_limit = weight_bytes + E2E_RSS_HEADROOM_GB * GB
    print()
    note = "; smoke test: the speed and memory targets are meant for the full shape and all categories"
    print(f"summary (end to end, {'+'.join(E2E_LANGUAGES)}, top-{TOP_K}, fp32, {len(prompts)} sentences, pipeline "
          f"on {len(subset)}; load average now {load_average()}{note if restricted else ''})")
    checks = [
        (f"speed-up: CLI {cli.wall_s:.1f}s (load included) vs pipeline {pipe_all_s:.0f}s (extrapolated) = "
         f"{speedup:.1f}x >= {E2E_SPEEDUP_TARGET:.0f}x", speedup >= E2E_SPEEDUP_TARGET, args.check),
        (f"peak RSS: {cli.peak_rss / GB:.3f} GB <= weights {weight_bytes / GB:.3f} GB + {E2E_RSS_HEADROOM_GB} GB "
         f"= {rss_limit / GB:.3f} GB", cli.peak_rss <= rss_limit, args.check),
        (f"word mode, peak RSS: {word.peak_rss / GB:.3f} GB <= weights {weight_bytes / GB:.3f} GB + "
         f"{E2E_RSS_HEADROOM_GB} GB = {rss_limit / GB:.3f} GB", word.peak_rss <= rss_limit, args.check),
        (f"top-{TOP_K} of the CLI equals the pipeline's up to exact ties (|diff| <= {TIE:g}) on {len(subset)} "
         f"sentences", agree, True),
    ]
    for line, ok, checked in checks:
        print(f"  {('PASS' if ok else 'FAIL') if checked else '----'}  {line}{'' if checked else ' (--no-check)'}")
    print(f"  word mode: {word.wall_s:.1f}s = {len(prompts) / word.wall_s:.2f} sent/s ({word.wall_s / cli.wall_s:.2f}x "
          f"token mode), {passes_per_sentence:.2f} forward passes per sentence")
    print_study_estimate(estimate, restricted)
    print(f"  total wall time {time.perf_counter() - started:.0f}s")
    failed = [line for line, ok, checked in checks if checked and not ok]
    if failures:
        print(f"FAILED: {len(failures)} top-k disagreements:", file=sys.stderr)
        for failure in failures[:10]:
            print(f"  {failure}", file=sys.stderr)
    if failed:
        print(f"FAILED: {len(failed)} of the end-to-end checks", file=sys.stderr)
    return 1 if failed or failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=500, help="sentences the engine scores (default 500)")
    parser.add_argument("--pipeline_sentences", type=int, default=None,
                        help="the first N of them also go through the pipeline (default 80; --end_to_end: 60)")
    parser.add_argument("--batch_size", type=int, default=64, help="engine batch size (default 64)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16 also runs the engine in bfloat16 and compares it with fp32")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's); "
                             "--end_to_end: also OMP/MKL_NUM_THREADS of the CLI")
    e2e = parser.add_argument_group("end to end (--end_to_end)")
    e2e.add_argument("--end_to_end", action="store_true",
                     help="time the whole CLI (child process, load included) on en+fr against the pipeline")
    e2e.add_argument("--layers", type=int, default=LAYERS,
                     help=f"model layers (default {LAYERS}; fewer for smoke tests)")
    e2e.add_argument("--hidden", type=int, default=HIDDEN,
                     help=f"model width (default {HIDDEN}; smaller for smoke tests)")
    e2e.add_argument("--categories", nargs="+", default=None, metavar="CATEGORY",
                     help="probe these categories only (smoke tests; default: all)")
    e2e.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                     help="fail on the speed-up and memory targets (default: on; top-k agreement is always checked)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.end_to_end:
        if args.layers < 1 or args.hidden < 1 or (args.pipeline_sentences is not None and args.pipeline_sentences < 1):
            parser.error("need --layers >= 1, --hidden >= 1 and --pipeline_sentences >= 1")
        return end_to_end(args)
    if args.pipeline_sentences is None:
        args.pipeline_sentences = 80
    if args.sentences < 1 or args.batch_size < 1 or not 1 <= args.pipeline_sentences <= args.sentences:
        parser.error("need --sentences >= 1, --batch_size >= 1 and 1 <= --pipeline_sentences <= --sentences")

    from transformers import AutoTokenizer, XLMRobertaForMaskedLM
    from transformers.utils import logging as hf_logging

    from probing.engine import onednn_linear_available
    from probing.models import build_xlmr_tokenizer

    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"oneDNN linear available: {onednn_linear_available()}, load average {os.getloadavg()[0]:.2f}")

    torch.manual_seed(SEED)
    model = XLMRobertaForMaskedLM(xlmr_base_config()).eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e6) == 278, n_params
    with tempfile.TemporaryDirectory() as tmp:
        build_xlmr_tokenizer(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    print(f"model: random XLMRobertaForMaskedLM, xlm-roberta-base shape, {n_params:,} parameters "
          f"(seed {SEED}), built in {time.perf_counter() - started:.1f}s")

    sentences = sample_sentences(args.sentences, tokenizer.mask_token)
    subset = sentences[:args.pipeline_sentences]
    shapes = batch_shapes(tokenizer, sentences, args.batch_size)
    tokens = sum(b * t for b, t in shapes)
    print(f"sentences: {len(sentences)} ({', '.join(LANGUAGES)} interleaved), {tokens} padded tokens in "
          f"{len(shapes)} batches of up to {args.batch_size}; pipeline timed on the first {len(subset)}")

    pipe_s, pipe_results = time_pipeline(model, tokenizer, subset)
    pipe_rate = len(subset) / pipe_s
    print(f"pipeline: {len(subset)} sentences one at a time in {pipe_s:.1f}s = {pipe_rate:.2f} sent/s "
          f"(extrapolated to {len(sentences)}: {len(sentences) / pipe_rate:.0f}s)")

    plain_s, plain_results, _ = time_engine(model, tokenizer, sentences, args.batch_size, torch.float32, False)
    print(f"engine, plain (MKL):     {len(sentences)} sentences in {plain_s:.1f}s = {len(sentences) / plain_s:.1f} sent/s")
    fast_s, fast_results, fast_used = time_engine(model, tokenizer, sentences, args.batch_size, torch.float32, True)
    label = "fast path (oneDNN)" if fast_used else "fast path unavailable"
    print(f"engine, {label}: {len(sentences)} sentences in {fast_s:.1f}s = {len(sentences) / fast_s:.1f} sent/s")

    failures = []
    pipe_diff, pipe_swaps = 0.0, 0
    for i, (ids, lps) in enumerate(pipe_results):
        ok, diff, swaps = compare_top_k(fast_results[i].token_ids, fast_results[i].log_probs.astype(np.float64), ids, lps)
        pipe_diff, pipe_swaps = max(pipe_diff, diff), pipe_swaps + swaps
        if not ok:
            failures.append(f"engine vs pipeline, sentence {i} {subset[i]!r}: max log-prob diff {diff:.2e}")
    path_diff, path_swaps = 0.0, 0
    for i, (a, b) in enumerate(zip(plain_results, fast_results)):
        ok, diff, swaps = compare_top_k(a.token_ids, a.log_probs, b.token_ids, b.log_probs)
        path_diff, path_swaps = max(path_diff, diff), path_swaps + swaps
        if not ok:
            failures.append(f"fast vs plain path, sentence {i} {sentences[i]!r}: max log-prob diff {diff:.2e}")
    print(f"agreement: engine vs pipeline on {len(subset)} sentences: max |log-prob diff| {pipe_diff:.2e}, "
          f"{pipe_swaps} of {len(subset) * TOP_K} ranks swapped within ties; fast vs plain path on "
          f"{len(sentences)}: max {path_diff:.2e}, {path_swaps} ranks swapped within ties")

    flops = engine_flops(shapes)
    mkl_rate, onednn_rate = gemm_rates(round(tokens / len(shapes)))
    fast_gflops, plain_gflops = flops / fast_s / 1e9, flops / plain_s / 1e9

    bf16 = None
    if args.precision == "bf16":  # last: the scorer casts the shared model to bf16 in place
        bf16_s, bf16_results, _ = time_engine(model, tokenizer, sentences, args.batch_size, torch.bfloat16, False)
        overlap = np.mean([len(set(a.token_ids.tolist()) & set(b.token_ids.tolist())) / TOP_K
                           for a, b in zip(fast_results, bf16_results)])
        top1 = np.mean([a.token_ids[0] == b.token_ids[0] for a, b in zip(fast_results, bf16_results)])
        bf16 = (bf16_s, overlap, top1)
        print(f"engine, bf16: {len(sentences)} sentences in {bf16_s:.1f}s = {len(sentences) / bf16_s:.1f} sent/s; "
              f"vs fp32: mean overlap@{TOP_K} {overlap:.3f}, top-1 agreement {top1:.3f}")

    n = len(sentences)
    rows = [
        ("fill-mask pipeline, 1 sentence/call", pipe_rate, 1.0, None),
        ("engine fp32, plain (MKL GEMMs)", n / plain_s, n / plain_s / pipe_rate, plain_gflops),
        (f"engine fp32, {'oneDNN fast path' if fast_used else 'fast path (unavailable)'}", n / fast_s,
         n / fast_s / pipe_rate, fast_gflops),
    ]
    if bf16:
        rows.append(("engine bf16", n / bf16[0], n / bf16[0] / pipe_rate, None))
    print()
    print(f"summary ({torch.get_num_threads()} threads, batch size {args.batch_size}, top-{TOP_K}, "
          f"{n} sentences, pipeline on {len(subset)}; load average now {os.getloadavg()[0]:.2f})")
    print(f"  {'':40s} {'sent/s':>8s} {'vs pipeline':>12s} {'GFLOP/s':>8s}")
    for name, rate, ratio, gflops in rows:
        print(f"  {name:40s} {rate:8.2f} {ratio:11.1f}x {'' if gflops is None else f'{gflops:8.1f}'}")
    m = round(tokens / len(shapes))
    print(f"  engine work: {flops / 1e12:.3f} TFLOP analytical ({flops / n / 1e9:.2f} GFLOP/sentence); "
          f"fp32 GEMM {m}x768 @ 768x3072: torch.matmul (MKL) {mkl_rate:.0f} GFLOP/s, oneDNN {onednn_rate:.0f} GFLOP/s; "
          f"fast path reaches {fast_gflops / max(mkl_rate, onednn_rate):.0%} of the better one")
    if bf16:
        print(f"  bf16 vs fp32: mean overlap@{TOP_K} {bf16[1]:.3f}, top-1 agreement {bf16[2]:.3f}")
    print(f"  top-{TOP_K} ids agree with the pipeline up to exact ties (|diff| < {TIE:g}): "
          f"{'yes' if not failures else 'NO'}; max |log-prob diff| {pipe_diff:.2e}")
    print(f"  total wall time {time.perf_counter() - started:.0f}s")
    if failures:
        print(f"FAILED: {len(failures)} top-k disagreements beyond ties:", file=sys.stderr)
        for failure in failures[:10]:
            print(f"  {failure}", file=sys.stderr)
        return 1
    if not math.isfinite(pipe_diff):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
