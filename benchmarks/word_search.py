"""How often word mode's search returns the exhaustive exact top-k, and at what cost.

Run with ``make bench``, or::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/word_search.py [--sentences 4] [--candidates 1000] [--k 20]
        [--base_sentences 3] [--base_candidates 300] [--no-base] [--no-check]

What it measures
----------------
Word mode (:mod:`probing.word_scoring`) ranks a candidate set by the chain-rule log-probability
of each word, computed exactly only for a shortlist chosen by a cheap first stage. The reference
is exhaustive exact scoring: every candidate's chain rule, one pass per distinct prefix
(``WordScorer.exhaustive``). For each sentence, the search's top-k (default shortlist factor) is
compared with the reference's: *identical* when the log-probability at every rank agrees within
``TIE`` = 1e-5 and the ids agree up to exact ties (``probe_speed.compare_top_k``).

Models (all random: no weights can be downloaded here):

* ``tiny-xlmr``: random weights give log-probabilities within ~0.1 nats of each other, so a word
  of two pieces (~2 x 12.4 nats) never beats one of one piece: the top-k is all one-piece words
  and the first stage alone finds it (what a real study's cost looks like on this model);
* ``tiny-xlmr sharpened``: the same model with its LM head's layer-norm scale multiplied by 30,
  so log-probabilities spread over several nats and depend on the context, and the candidate set
  also holds the model's own best piece sequences for each sentence
  (:func:`probing.word_scoring.beam_pieces`: 2 and 3 pieces, 3 best tokens per step): longer
  words then compete with one-piece ones and often win, as they would in a trained model, so
  the shortlist has real work to do;
* a random model of **xlm-roberta-base's shape** (12 layers, width 768; fewer sentences and
  candidates, each exhaustive reference costing one 278M-parameter pass per prefix).

Sentences: the shipped prompts of every language (the base-shape model: en and fr), each
language shuffled with seed 0, the first ``--sentences`` of each. Candidates: the language's real
candidate set (:mod:`probing.candidates`, default settings) subsampled to ``--candidates`` words
(seed 0; the full sets hold 30-70k words, too many for an exhaustive reference), plus the beam
sequences for the sharpened models. ``k`` is
``--k`` (20); the shortlist is ``ceil(2 k)`` words as in a run (``--shortlist_factor``).

Reported per model: the share of sentences whose top-k is identical, the share of longer words in
the exact top-k, forward passes per sentence of the search and of the reference, and seconds.

Target (checked unless ``--no-check``; exit status 1 otherwise): identical top-k on at least 99%
of the sentences, for every model.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe_speed import build_random_model_dir, compare_top_k, xlmr_base_config  # noqa: E402

SEED = 0
TARGET = 0.99
SHARPEN = 30.0
BASE_LANGUAGES = ("en", "fr")


def sharpened(model, factor: float = SHARPEN):
    """``model`` with its LM head's layer-norm scale multiplied by ``factor`` (logits ``factor`` x wider)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.lm_head.layer_norm.weight.mul_(factor)
    return model


def language_material(tokenizer, languages, n_sentences: int, n_candidates: int):
    """``{language: (sentences, candidate pieces)}``: shuffled prompts and a candidate subsample."""
    from probing import run
    from probing.prompts import build_prompts

    args = run.build_parser().parse_args(["--languages", *languages, "--model", "unused"])
    run.validate_args(args)
    data = run.load_language_data(args)
    sets = run.build_candidates(args, data, tokenizer)
    material = {}
    for language in languages:
        sentences = [p.sentence for p in build_prompts(data[language].prompts, mask_token=tokenizer.mask_token)]
        random.Random(f"{SEED}-{language}").shuffle(sentences)
        pieces = list(sets[language].unpack().pieces)
        random.Random(f"{SEED}-{language}-candidates").shuffle(pieces)
        material[language] = (sentences[:n_sentences], pieces[:n_candidates])
    return material


def measure(label: str, model, tokenizer, material, k: int, shortlist_factor: float, *, beams: bool = False) -> dict:
    from probing.engine import MaskedLMScorer
    from probing.word_scoring import WordScorer, beam_pieces

    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=64, progress=False)
    if beams:
        material = {language: (texts, sorted(set(pieces) | beam_pieces(scorer, texts)))
                    for language, (texts, pieces) in material.items()}
    identical = sentences = longer = 0
    search_passes = exhaustive_passes = 0
    search_s = exhaustive_s = 0.0
    max_diff = 0.0
    for language, (texts, pieces) in material.items():
        words = WordScorer(scorer, pieces, shortlist_factor=shortlist_factor)
        ids = [tokenizer(s)["input_ids"] for s in texts]
        slots = [row.index(tokenizer.mask_token_id) for row in ids]
        start = time.perf_counter()
        got_ids, got_values = words.select(ids, slots, k)
        search_s += time.perf_counter() - start
        search_passes += words.passes
        words.passes = 0
        start = time.perf_counter()
        exact = words.exhaustive(ids, slots)
        exhaustive_s += time.perf_counter() - start
        exhaustive_passes += words.passes
        values, indices = torch.topk(exact, k, dim=1)
        longer += int((words.table.n_pieces[indices] > 1).sum())
        for row in range(len(texts)):
            ok, diff, _ = compare_top_k(got_ids[row].numpy(), got_values[row].numpy(),
                                        indices[row].numpy(), values[row].numpy())
            identical += ok
            max_diff = max(max_diff, diff)
            sentences += 1
    result = {"label": label, "sentences": sentences, "identical": identical / sentences,
              "longer_share": longer / (sentences * k), "search_passes": search_passes / sentences,
              "exhaustive_passes": exhaustive_passes / sentences, "search_s": search_s,
              "exhaustive_s": exhaustive_s, "max_diff": max_diff}
    print(f"{label}: identical top-{k} on {identical}/{sentences} sentences ({100 * result['identical']:.1f}%); "
          f"longer words {100 * result['longer_share']:.1f}% of the exact top-{k}; passes per sentence "
          f"{result['search_passes']:.1f} (search) vs {result['exhaustive_passes']:.0f} (exhaustive); "
          f"{search_s:.1f} s vs {exhaustive_s:.1f} s; max |log p diff| by rank {max_diff:.1e}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=4, help="per language, tiny models (default: 4)")
    parser.add_argument("--candidates", type=int, default=1000, help="candidate subsample per language (default: 1000)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--shortlist_factor", type=float, default=2.0)
    parser.add_argument("--languages", nargs="+", default=None, help="default: every language in prompts/")
    parser.add_argument("--base_sentences", type=int, default=3, help="per language, base-shape model (default: 3)")
    parser.add_argument("--base_candidates", type=int, default=300)
    parser.add_argument("--no-base", dest="base", action="store_false", help="skip the xlm-roberta-base-shape model")
    parser.add_argument("--no-check", dest="check", action="store_false")
    args = parser.parse_args(argv)

    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from probing.models import ensure_tiny_xlmr
    from probing.prompts import load_languages

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(SEED)
    started = time.perf_counter()
    tiny_dir = ensure_tiny_xlmr()
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tiny = AutoModelForMaskedLM.from_pretrained(tiny_dir).eval()
    languages = args.languages or list(load_languages(None))
    material = language_material(tokenizer, languages, args.sentences, args.candidates)
    print(f"{'+'.join(languages)}: {args.sentences} sentences and {args.candidates} candidates per language, "
          f"k = {args.k}, shortlist factor {args.shortlist_factor}; {torch.get_num_threads()} threads", flush=True)
    results = [measure("tiny-xlmr", tiny, tokenizer, material, args.k, args.shortlist_factor),
               measure(f"tiny-xlmr sharpened x{SHARPEN:g}, with its beam words", sharpened(tiny), tokenizer,
                       material, args.k, args.shortlist_factor, beams=True)]
    if args.base:
        base_material = language_material(tokenizer, list(BASE_LANGUAGES), args.base_sentences, args.base_candidates)
        with tempfile.TemporaryDirectory(prefix="word_search-") as tmp:
            model_dir = Path(tmp) / "random-xlmr-base"
            build_random_model_dir(model_dir, xlmr_base_config())
            base = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
        results.append(measure("random xlm-roberta-base shape", base, tokenizer, base_material,
                               args.k, args.shortlist_factor))
        results.append(measure("random xlm-roberta-base shape, sharpened, with its beam words", sharpened(base),
                               tokenizer, base_material, args.k, args.shortlist_factor, beams=True))
    print(f"total {time.perf_counter() - started:.0f} s")
    failed = [r for r in results if r["identical"] < TARGET]
    for r in results:
        status = ("PASS" if r["identical"] >= TARGET else "FAIL") if args.check else "----"
        print(f"  {status}  {r['label']}: identical top-{args.k} on {100 * r['identical']:.1f}% of "
              f"{r['sentences']} sentences >= {100 * TARGET:.0f}%")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
