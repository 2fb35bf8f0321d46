"""finetune.embed: pooling and normalisation by hand, the CLI on tiny-xlmr and on tiny multi-task models
(with and without embedding_size), and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from transformers import AutoModel, AutoTokenizer

from finetune import embed, train
from finetune.config import load_config
from finetune.losses import pool
from probing.errors import UserError
from test_finetune_train import synthetic_config, write_synthetic

# two sequences, the first padded: h = states (batch, length, width), m = attention mask
H = torch.tensor([[[1.0, 4.0], [3.0, 0.0], [9.0, 9.0]],
                  [[2.0, -2.0], [-1.0, 5.0], [2.0, 0.0]]])
M = torch.tensor([[1, 1, 0], [1, 1, 1]])


@pytest.mark.parametrize("pooling, expected", [
    ("cls", [[1.0, 4.0], [2.0, -2.0]]),
    ("mean", [[2.0, 2.0], [1.0, 1.0]]),          # (1+3)/2, (4+0)/2; (2-1+2)/3, (-2+5+0)/3
    ("max", [[3.0, 4.0], [2.0, 5.0]]),           # the padded [9, 9] never counts
])
def test_pooling_by_hand_with_padding(pooling, expected):
    assert pool(H, M, pooling).tolist() == pytest.approx(np.array(expected))


@pytest.mark.parametrize("how, expected", [
    ("none", [[3.0, -4.0], [0.0, 2.0]]),
    ("l1", [[3 / 7, -4 / 7], [0.0, 1.0]]),       # |3| + |-4| = 7
    ("l2", [[0.6, -0.8], [0.0, 1.0]]),           # sqrt(9 + 16) = 5
])
def test_normalisation_by_hand(how, expected):
    assert embed.normalize(torch.tensor([[3.0, -4.0], [0.0, 2.0]]), how).tolist() == pytest.approx(np.array(expected))


def test_unknown_pooling_or_normalisation_is_refused():
    with pytest.raises(UserError, match="unknown pooling 'avg'"):
        embed.check_embedding_options("avg", "none")
    with pytest.raises(UserError, match="unknown normalisation 'l3'"):
        embed.check_embedding_options("mean", "l3")
    with pytest.raises(ValueError):
        embed.normalize(torch.ones(1, 2), "l3")


def plain_states(folder, texts, max_length=128):
    """(hidden states, mask) from plain transformers: the oracle."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    return hidden.numpy(), encoded["attention_mask"].numpy()


TEXTS = ["I work with teachers.", "Je déteste les voisins qui font du bruit la nuit.", "Hallo"]


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS, "language": ["en", "fr", "de"], "sid": ["a", "b", "c"]}).to_csv(path, index=False)
    return path


def read_embeddings(path):
    table = pd.read_parquet(path)
    return table, np.stack(table["embedding"].to_numpy())


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_cli_on_tiny_xlmr_equals_plain_transformers(pooling, tiny_dir, texts_file, tmp_path, cli):
    output = tmp_path / "out" / "e.parquet"
    code, stdout, err = cli(embed.main, ["--model", "tiny-xlmr", "--input", str(texts_file), "--output", str(output),
                                         "--pooling", pooling, "--normalize", "l2", "--id_column", "sid"])
    assert code == 0, err
    table, vectors = read_embeddings(output)
    assert table["row"].tolist() == [0, 1, 2] and table["language"].tolist() == ["en", "fr", "de"]
    assert table["id"].tolist() == ["a", "b", "c"]
    hidden, mask = plain_states(tiny_dir, TEXTS)
    if pooling == "cls":
        pooled = hidden[:, 0]
    elif pooling == "mean":
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    else:
        pooled = np.where(mask[..., None] == 1, hidden, -np.inf).max(1)
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    assert vectors.shape == (3, 32) and np.allclose(vectors, expected, atol=1e-5)
    manifest = json.loads((tmp_path / "out" / "e.parquet.manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"][:3] == ["python", "-m", "finetune.embed"]
    assert manifest["model"]["name"] == "tiny-xlmr" and manifest["model"]["random_weights"] is True
    assert manifest["embedding"] == {"pooling": pooling, "normalize": "l2", "projection": False, "dimension": 32,
                                     "dtype": "float32"}
    code, _, err = cli(embed.main, ["--model", "tiny-xlmr", "--input", str(texts_file), "--output", str(output)])
    assert code == 2 and "--overwrite" in err  # its own earlier result: replaced only when asked


@pytest.fixture(scope="module")
def multitask_pair(models_dir, tiny_dir, tmp_path_factory):
    """Two tiny multi-task models trained for 2 steps: without and with embedding_size 8."""
    folder = tmp_path_factory.mktemp("embed-data")
    write_synthetic(folder)
    common = {"max_steps": 2, "eval_steps": 2, "tasks": [
        {"name": "polarity", "type": "binary", "dataset": "sentences", "label_column": "polarity"},
        {"name": "places", "type": "token", "dataset": "entities", "label_column": "tags",
         "labels": ["O", "B-LOC", "I-LOC"]}]}
    plain = train.run(load_config(synthetic_config(folder, output_name="tiny-embed-plain", **common)), overwrite=True)
    projected = train.run(load_config(synthetic_config(folder, output_name="tiny-embed-proj", embedding_size=8,
                                                       **common)), overwrite=True)
    return plain, projected


def test_multitask_models_round_trip(multitask_pair, texts_file, tmp_path, cli):
    plain, projected = multitask_pair
    assert not (plain / "projection.safetensors").exists()
    assert "embedding_size" not in json.loads((plain / "tasks.json").read_text())  # as folders made before it
    assert json.loads((projected / "tasks.json").read_text())["embedding_size"] == 8

    hidden, mask = plain_states(projected, TEXTS, max_length=24)  # the encoder alone, by plain transformers
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)  # the synthetic config pools by mean
    weights = safetensors.torch.load_file(str(projected / "projection.safetensors"))
    expected = mean @ weights["weight"].numpy().T + weights["bias"].numpy()

    out = tmp_path / "projected.parquet"
    assert cli(embed.main, ["--model", str(projected), "--input", str(texts_file), "--output", str(out)])[0] == 0
    _, vectors = read_embeddings(out)
    assert vectors.shape == (3, 8) and np.allclose(vectors, expected, atol=1e-5)
    manifest = json.loads((tmp_path / "projected.parquet.manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedding"]["projection"] is True and manifest["model"]["embedding_size"] == 8
    assert manifest["model"]["multitask"] is True and manifest["embedding"]["pooling"] == "mean"

    out = tmp_path / "raw.parquet"
    argv = ["--model", str(projected), "--input", str(texts_file), "--output", str(out), "--projection", "off"]
    assert cli(embed.main, argv)[0] == 0
    assert np.allclose(read_embeddings(out)[1], mean, atol=1e-5)

    out = tmp_path / "plain.parquet"
    argv = ["--model", str(plain), "--input", str(texts_file), "--output", str(out), "--pooling", "cls"]
    assert cli(embed.main, argv)[0] == 0
    assert np.allclose(read_embeddings(out)[1], plain_states(plain, TEXTS, max_length=24)[0][:, 0], atol=1e-5)

    # the heads of the projected model take the projection's 8 numbers: predict runs on it
    from finetune import predict

    out = tmp_path / "predicted.csv"
    code, _, err = cli(predict.main, ["--model", str(projected), "--input", str(texts_file), "--output", str(out)])
    assert code == 0, err
    assert len(pd.read_csv(out)) == 3 and "polarity_p" in pd.read_csv(out).columns

    out = tmp_path / "refused.parquet"
    code, _, err = cli(embed.main, ["--model", str(plain), "--input", str(texts_file), "--output", str(out),
                                    "--projection", "on"])
    assert code == 2 and "has no projection" in err and not out.exists()


@pytest.mark.parametrize("flag, value", [("--pooling", "avg"), ("--normalize", "l3"), ("--projection", "maybe")])
def test_bad_options_exit_2_with_nothing_written(flag, value, texts_file, tmp_path, cli):
    output = tmp_path / "new" / "e.parquet"
    code, stdout, err = cli(embed.main, ["--model", "tiny-xlmr", "--input", str(texts_file), "--output", str(output),
                                         flag, value])
    assert code == 2 and f"invalid choice: '{value}'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_embedding_size_config_checks(tmp_path):
    from finetune.config import load_config as load

    path = tmp_path / "mlm.yaml"
    path.write_text("output_name: x\ndatasets: {d: {train: {path: t.txt}}}\nembedding_size: 16\n", encoding="utf-8")
    with pytest.raises(UserError, match="embedding_size.*sentence task"):
        load(path)
    with pytest.raises(UserError, match="embedding_size.*>= 1"):
        load(path, {"embedding_size": 0})
