"""Word-start and script filters for the three sub-word schemes, a BERT model end to end, and the
word-of-the-language filter (sub-words, foreign words, lemmas) on the real EmoAtlas lexicons."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from probing.engine import MaskedLMScorer, split_lm_head
from probing.lexicon import load_lexicon
from probing.predictions import REASONS, TokenClassifier, build_shard
from probing.words import (GROUP_WORD, NOT_A_WORD, NOT_WORD_START, OTHER_LANGUAGE, LanguageWords, Vocabulary,
                           group_word_keys, group_words, is_script_word, known_lemma, language_words, vocabulary)


class FakeTokenizer:
    def __init__(self, tokens, special):
        self.tokens = tokens
        self.all_special_ids = [tokens.index(t) for t in special]

    def __len__(self):
        return len(self.tokens)

    def convert_ids_to_tokens(self, ids):
        return [self.tokens[i] for i in ids]


@pytest.mark.parametrize("tokens, special, words, starts", [
    (["<s>", "<mask>", "▁happy", "ness", "▁ö", "▁"], ["<s>", "<mask>"],
     ["", "", "happy", "", "ö", ""], [False, False, True, False, True, False]),
    (["<s>", "Ġhappy", "ness", "Ġsad"], ["<s>"],
     ["", "happy", "", "sad"], [False, True, False, True]),
    (["[CLS]", "[MASK]", "happy", "##ness", "sad"], ["[CLS]", "[MASK]"],
     ["", "", "happy", "", "sad"], [False, False, True, False, True]),
])
def test_word_starts_per_scheme(tokens, special, words, starts):
    vocab = vocabulary(FakeTokenizer(tokens, special))
    assert list(vocab.words) == words
    assert vocab.word_start.tolist() == starts


def test_script_filter():
    assert is_script_word("όμορφες", "Greek")
    assert not is_script_word("beautiful", "Greek")
    assert is_script_word("épanouies", "Latin")
    assert not is_script_word("x", "Latin")  # one letter is not a word here
    assert not is_script_word("co-op", "Latin") and not is_script_word("r2d2", "Latin")
    assert not is_script_word("москва", "Latin")


def test_group_words_split_names():
    assert group_words(["personnes âgées", "Afro-Américains", "l'Iran"]) == {
        "personnes", "âgées", "afro", "américains", "l", "iran"}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT with a WordPiece vocabulary written here."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    words = ["why", "are", "women", "men", "so", "happy", "sad", "lazy", "kind", "smart", "?", "."]
    pieces = ["##s", "##ly", "##er"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *pieces]
    folder = tmp_path_factory.mktemp("bert")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(folder)
    assert len(tokenizer) == len(vocab)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32)).eval()
    return model, tokenizer


def test_bert_head_at_mask_equals_fill_mask_pipeline(tiny_bert):
    from transformers import pipeline

    model, tokenizer = tiny_bert
    encoder, head = split_lm_head(model)
    assert head is model.cls
    sentences = ["why are women so [MASK] ?", "why are men so [MASK] ."]
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=2, progress=False)
    results = scorer.top_k(sentences, k=5)
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=5, device="cpu")
    for sentence, result in zip(sentences, results):
        out = fill(sentence)
        np.testing.assert_array_equal(result.token_ids, [o["token"] for o in out])
        np.testing.assert_allclose(result.log_probs, np.log([o["score"] for o in out]), atol=1e-5)
    vocab = vocabulary(tokenizer)
    assert vocab.scheme == "wordpiece"
    assert vocab.word_start[tokenizer.convert_tokens_to_ids("happy")]
    assert not vocab.word_start[tokenizer.convert_tokens_to_ids("##ly")]
    assert not vocab.word_start[tokenizer.mask_token_id]


# --- words of the probed language, on the real EmoAtlas lexicons ---------------------------------

LANGUAGE_NAMES = {"fr": "French", "es": "Spanish", "el": "Greek", "de": "German", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch"}


@pytest.fixture(scope="module")
def words_of():
    """``words_of(code)``: the :class:`LanguageWords` a run builds for ``code`` (EmoAtlas lexicon)."""
    built = {}

    def get(code):
        if code not in built:
            lexicon = load_lexicon("emoatlas", code, LANGUAGE_NAMES[code], code)
            built[code] = language_words(code, code, lexicon.entries)
        return built[code]

    return get


# Per language: sub-word fragments that SentencePiece splits off longer words (not_a_word), words
# of other languages (other_language: Vietnamese khóa, English, German weil, French pourquoi) and
# genuine inflected words (kept, with their lemma). Grouped by language, so that the tests load
# each language's lemma dictionary once.
CASES = {
    "fr": {"fragments": ["hospitali", "hospit", "intellig"],
           "foreign": ["khóa", "the", "became", "people", "weil"],
           "inflected": {"méchants": "méchant", "belles": "beau", "heureuses": "heureux", "jalouses": "jaloux",
                         "gentils": "gentil", "femmes": "femme", "vieilles": "vieux"}},
    "es": {"fragments": ["hospit", "simpátic"],
           "foreign": ["became", "the", "khóa", "people", "pourquoi"],
           "inflected": {"perezosos": "perezoso", "hermosas": "hermoso", "felices": "feliz", "celosas": "celoso",
                         "tontos": "tonto", "fuertes": "fuerte"}},
    "el": {"fragments": ["παρακολουθήσ", "ευτυχισμέν", "θυμωμέν"],
           "foreign": [],  # foreign words in Latin script never get here (not_in_script)
           "inflected": {"όμορφες": "όμορφος", "θυμωμένοι": "θυμωμένος", "έξυπνοι": "έξυπνος",
                         "τεμπέληδες": "τεμπέλης", "χαρούμενες": "χαρούμενος", "γυναίκες": "γυναίκα"}},
    "de": {"fragments": ["glückl", "intellig", "Freundl", "gefähr"],
           "foreign": ["the", "became", "khóa", "pourquoi"],
           "inflected": {"Ängste": "angst", "Feinde": "feind", "Söhne": "sohn", "Frauen": "frau",
                         "Idioten": "idiot", "kluge": "klug", "glücklichen": "glücklich", "wütende": "wütend"}},
    "it": {"fragments": ["intelligen", "orgogl"],
           "foreign": ["the", "became", "pourquoi"],
           "inflected": {"belle": "bello", "pigri": "pigro", "arrabbiati": "arrabbiato", "gelose": "geloso"}},
    "pt": {"fragments": ["inteligen", "orgulh", "simpátic"],
           "foreign": ["the", "became", "pourquoi"],
           "inflected": {"preguiçosos": "preguiçoso", "bonitas": "bonito", "felizes": "feliz",
                         "zangados": "zangado"}},
    "nl": {"fragments": ["gelukk", "vriendel", "intellig"],
           "foreign": ["the", "became", "pourquoi"],
           "inflected": {"mooie": "mooi", "luie": "lui", "slimme": "slim", "boze": "boos",
                         "vriendelijke": "vriendelijk"}},
}


def word_filter_cases():
    """``(language, word, (lemma, reason))``; lemma None: not checked."""
    for language, kinds in CASES.items():
        for word in kinds["fragments"]:
            yield pytest.param(language, word, ("", NOT_A_WORD), id=f"{language}-fragment-{word}")
        for word in kinds["foreign"]:  # may have a lemma in the probed language's dictionary
            yield pytest.param(language, word, (None, OTHER_LANGUAGE), id=f"{language}-foreign-{word}")
        for word, lemma in kinds["inflected"].items():
            yield pytest.param(language, word, (lemma, ""), id=f"{language}-inflected-{word}")


@pytest.mark.parametrize("language, word, expected", list(word_filter_cases()))
def test_word_filter_per_language(words_of, language, word, expected):
    """Fragments: no lemma, not_a_word; foreign words: other_language; inflected words: kept, lemma."""
    lemma, reason = words_of(language).classify(word)
    expected_lemma, expected_reason = expected
    assert reason == expected_reason
    if expected_lemma is not None:
        assert lemma == expected_lemma


def test_loanword_more_frequent_elsewhere_by_less_than_the_margin_stays(words_of):
    # French "cool" (Zipf 4.9) against English (5.5): kept; simplemma has no French lemma for it
    assert words_of("fr").classify("cool") == ("", "")


# --- a word that only a lemma links to the lexicon passes the other-language test ----------------

@pytest.mark.parametrize("language, word, lemma", [
    ("es", "juga", "jugar"),  # Indonesian "also" (Zipf 6.7), against Spanish jugar (5.1)
    ("fr", "beste", "bête"),  # German and Norwegian "best"
    ("de", "les", "lesen"),  # French "the" (7.3)
])
def test_foreign_word_whose_lemma_is_a_lexicon_entry_is_dropped(words_of, language, word, lemma):
    words = words_of(language)
    assert words.lexicon.entry_of(word) == lemma  # the lexicon alone would have vouched for it
    assert words.classify(word) == (lemma, OTHER_LANGUAGE)


def test_own_form_in_the_lexicon_is_kept_and_a_lemma_alone_must_not_be_foreign():
    def words(lexicon_words, other_languages):
        return LanguageWords("es", "es", 2.5, {}, frozenset(lexicon_words), other_languages)

    assert words({"jugar"}, {}).classify("juga") == ("jugar", "")  # the lemma vouches, nothing says foreign
    assert words({"jugar"}, {"juga": ("id", 6.7)}).classify("juga") == ("jugar", OTHER_LANGUAGE)
    assert words({"juga"}, {"juga": ("id", 6.7)}).classify("juga") == ("jugar", "")  # its own form is a key
    assert words({"bonita"}, {}).classify("bonitos") == ("bonito", "")  # through the key's lemma
    assert words(set(), {}).classify("bonitos") == ("bonito", NOT_A_WORD)


def test_token_classifier_drops_the_leak_and_gives_the_feminine_keys_dimensions(words_of):
    tokens = ["<s>", "▁juga", "▁bonitos", "▁hermosas"]
    words = tuple(t[1:] if t.startswith("▁") else "" for t in tokens)
    vocab = Vocabulary("sentencepiece", tuple(tokens), words, np.array([bool(w) for w in words]))
    lexicon = load_lexicon("emoatlas", "es", "Spanish", "es")
    classifier = TokenClassifier(vocab, "Latin", words_of("es"), lexicon)
    lemmas, reasons, dims = classifier.classify(np.array([1, 2, 3]))
    assert lemmas == ["jugar", "bonito", "hermoso"]
    assert [REASONS[code] for code in reasons] == [OTHER_LANGUAGE, "", ""]
    assert dims == [None, lexicon.entries["bonita"], lexicon.entries["hermoso"]]


# --- German nouns: lemmas looked up in their original case ---------------------------------------

GERMAN_PLURALS = [
    ("Ängste", "angst"), ("Feinde", "feind"), ("Söhne", "sohn"), ("Mütter", "mutter"), ("Väter", "vater"),
    ("Töchter", "tochter"), ("Brüder", "bruder"), ("Schwestern", "schwester"), ("Frauen", "frau"),
    ("Männer", "mann"), ("Kinder", "kind"), ("Hunde", "hund"), ("Bäume", "baum"), ("Städte", "stadt"),
    ("Häuser", "haus"), ("Freunde", "freund"), ("Länder", "land"), ("Nächte", "nacht"),
    ("Ärzte", "arzt"), ("Flüchtlinge", "flüchtling"), ("Nachbarn", "nachbar"),
]


@pytest.mark.parametrize("plural, singular", GERMAN_PLURALS)
def test_german_plural_nouns_get_their_singular_lower_cased(plural, singular):
    assert known_lemma(plural, "de") == singular


def test_german_lower_cased_plural_is_read_as_another_word():
    # why the original case is tried first: lower-cased, these are forms of verbs (ängsten, söhnen)
    assert known_lemma("ängste", "de") != "angst"
    assert known_lemma("söhne", "de") != "sohn"


def test_group_word_keys_hold_the_lemma_of_the_capitalised_noun():
    assert "sohn" in group_word_keys(["Söhne"], "de")
    assert "sohn" not in group_words(["Söhne"])  # lower-casing alone would miss it
    assert {"männer", "mann", "alte", "alt"} <= group_word_keys(["alte Männer"], "de")


def test_german_group_drops_its_singular_noun_as_group_word(words_of):
    tokens = ["<s>", "▁Sohn", "▁Söhne", "▁söhne", "▁stolz", "▁Tochter", "hne"]
    words = tuple(t[1:] if t.startswith("▁") else "" for t in tokens)
    vocab = Vocabulary("sentencepiece", tuple(tokens), words, np.array([bool(w) for w in words]))
    lexicon = load_lexicon("emoatlas", "de", "German", "de")
    classifier = TokenClassifier(vocab, "Latin", words_of("de"), lexicon)
    prompts = [SimpleNamespace(language="de", category="family", group_id="sons", group="Söhne",
                               template_id="t0", sentence="Warum sind Söhne so <mask>?")]
    order = ["▁Sohn", "▁stolz", "▁Söhne", "▁Tochter", "▁söhne", "hne"]
    ids = np.array([[tokens.index(t) for t in order]], dtype=np.int32)
    log_probs = np.log(np.array([[0.3, 0.2, 0.1, 0.05, 0.02, 0.01]], dtype=np.float32))
    keys = {"sons": group_word_keys(["Söhne"], "de")}
    table = build_shard("m", prompts, ids, log_probs, log_probs, classifier, keys, "count").predictions.to_pandas()
    assert table["drop_reason"].astype(str).tolist() == [
        GROUP_WORD, "", GROUP_WORD, "", GROUP_WORD, NOT_WORD_START]
    assert table["lemma"].astype(str).tolist()[:4] == ["sohn", "stolz", "sohn", "tochter"]


# --- known_lemma: the dictionary only, no rule-based guess ---------------------------------------

@pytest.mark.parametrize("word, language, guess", [
    ("hospitali", "fr", "hospitali"),
    ("became", "es", "beca"),
    ("παρακολουθήσ", "el", "παρακολουθήσ"),
    ("glückl", "de", "glückl"),
])
def test_known_lemma_makes_no_rule_based_guess(word, language, guess):
    import simplemma

    assert known_lemma(word, language) == ""
    assert simplemma.lemmatize(word, lang=language) == guess  # simplemma itself always answers
    assert not simplemma.is_known(word, lang=language)


def test_known_lemma_agrees_with_simplemma_on_known_forms():
    import simplemma

    for word, language in [("belles", "fr"), ("hermosas", "es"), ("όμορφες", "el"), ("Ängste", "de")]:
        assert known_lemma(word, language) == simplemma.lemmatize(word, lang=language).lower() != ""


# --- the lemma dictionaries as tries ------------------------------------------------------------

def test_trie_dictionary_is_written_atomically_and_read_back_with_the_same_lemmas(tmp_path, monkeypatch):
    from simplemma.strategies import DefaultDictionaryFactory, DictionaryLookupStrategy

    from probing.words import _atomic_trie_factory

    factory = _atomic_trie_factory()
    built = DictionaryLookupStrategy(factory(cache_max_size=1, disk_cache_dir=str(tmp_path)))
    reference = DictionaryLookupStrategy(DefaultDictionaryFactory(cache_max_size=1))
    words = ["belles", "Heureux", "hospitali", "fâchées", "grands", "l'homme", "Tables"]
    expected = [reference.get_lemma(w, "fr") for w in words]
    assert [built.get_lemma(w, "fr") for w in words] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fr.dic"]  # no temporary file left behind

    # a second run opens the saved trie: building it again would fail here
    monkeypatch.setattr(factory, "_build_trie", lambda self, lang: pytest.fail("trie rebuilt"))
    reopened = DictionaryLookupStrategy(factory(cache_max_size=1, disk_cache_dir=str(tmp_path)))
    assert [reopened.get_lemma(w, "fr") for w in words] == expected


def test_trie_write_failure_leaves_no_partial_file(tmp_path):
    from probing.words import _atomic_trie_factory

    factory = _atomic_trie_factory()(cache_max_size=1, disk_cache_dir=str(tmp_path))

    class TrieKilledWhileSaving:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError):
        factory._write_trie_to_disk("en", TrieKilledWhileSaving())
    assert list(tmp_path.iterdir()) == []


def test_lemma_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    from simplemma.__metadata__ import __version__

    from probing.words import LEMMA_CACHE_ENV, lemma_cache_dir

    monkeypatch.setenv(LEMMA_CACHE_ENV, str(tmp_path))
    assert lemma_cache_dir() == tmp_path / __version__
