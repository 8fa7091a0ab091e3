"""`activation` and `score_threshold` mean the same for every model family.

An encoder cross-encoder's score is its relevance logit; a causal LM scored
on "yes"/"no" (sentence-transformers' `LogitScore`) gives the log-odds
`logit(yes) - logit(no)`, whose sigmoid is P(yes) among {yes, no}. Each is
checked against the model's own logits, computed here without the engine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from langchain_ce_rerank import Reranker

PAIRS_QUERY = "red apple"
TEXTS = ["a red apple pie", "blue plum", "green pear in a bowl", "the apple", "fruit"]


def tiny_causal_reranker(folder: Path) -> Path:
    """A random Qwen3ForCausalLM with a word-level tokenizer that has yes/no.

    Saved as a plain transformers checkpoint, so sentence-transformers loads
    it the way it loads `Qwen/Qwen3-Reranker-0.6B`: a text-generation
    Transformer followed by `LogitScore(yes, no)`.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    words = ["<pad>", "<unk>", "yes", "no"]
    words += sorted({w for t in [PAIRS_QUERY, *TEXTS] for w in t.split()})
    tokenizer = Tokenizer(
        models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        pad_token_id=0,
        architectures=["Qwen3ForCausalLM"],
    )
    Qwen3ForCausalLM(config).save_pretrained(folder)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def causal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_causal_reranker(tmp_path_factory.mktemp("tiny-qwen3"))


def own_logits(model: Any) -> list[float]:
    """The encoder's relevance logit per text, from transformers directly."""
    import torch

    features = model.tokenizer(
        [PAIRS_QUERY] * len(TEXTS), TEXTS, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        return [float(v) for v in model.model(**features).logits[:, 0]]


def own_p_yes(model: Any) -> list[float]:
    """P("yes") among {"yes", "no"} for the next token, by softmax of the logits."""
    import torch

    yes = model.tokenizer.convert_tokens_to_ids("yes")
    no = model.tokenizer.convert_tokens_to_ids("no")
    features = model.preprocess([(PAIRS_QUERY, t) for t in TEXTS])
    with torch.no_grad():
        last = model[0](features)["causal_logits"][:, -1]
    return [float(v) for v in torch.softmax(last[:, [no, yes]], dim=1)[:, 1]]


def test_an_encoders_score_is_its_logit_and_sigmoid_its_sigmoid(
    standin_ce_path: Path,
) -> None:
    raw = Reranker(model=standin_ce_path, device="cpu", top_n=None)
    logits = own_logits(raw.load_model())
    scores = raw.score(PAIRS_QUERY, TEXTS)
    assert all(type(s) is float for s in scores)
    assert scores == pytest.approx(logits, abs=1e-5)
    sigmoid = raw.with_settings(activation="sigmoid").score(PAIRS_QUERY, TEXTS)
    assert sigmoid == pytest.approx([1 / (1 + math.exp(-x)) for x in logits], abs=1e-6)


def test_a_causal_lms_score_is_the_yes_no_log_odds_and_sigmoid_is_p_yes(
    causal_path: Path,
) -> None:
    from sentence_transformers.cross_encoder.modules import LogitScore

    raw = Reranker(model=causal_path, device="cpu", top_n=None)
    model = raw.load_model()
    assert isinstance(model[-1], LogitScore)  # type: ignore[index]
    p_yes = own_p_yes(model)
    scores = raw.score(PAIRS_QUERY, TEXTS)
    assert all(type(s) is float for s in scores)
    assert scores == pytest.approx([math.log(p / (1 - p)) for p in p_yes], abs=1e-5)
    sigmoid = raw.with_settings(activation="sigmoid").score(PAIRS_QUERY, TEXTS)
    assert all(type(s) is float for s in sigmoid)
    assert sigmoid == pytest.approx(p_yes, abs=1e-6)


@pytest.mark.parametrize("family", ["encoder", "causal"])
def test_a_threshold_on_raw_scores_keeps_what_its_sigmoid_keeps_on_probabilities(
    family: str, standin_ce_path: Path, causal_path: Path
) -> None:
    path = standin_ce_path if family == "encoder" else causal_path
    engine = Reranker(model=path, device="cpu", top_n=None)
    scores = engine.score(PAIRS_QUERY, TEXTS)
    # A cut between the second and third best (0 and 0.5 for real models).
    ordered = sorted(scores, reverse=True)
    cut = (ordered[1] + ordered[2]) / 2
    raw = engine.with_settings(score_threshold=cut)
    prob = engine.with_settings(
        activation="sigmoid", score_threshold=1 / (1 + math.exp(-cut))
    )
    kept_raw = [r.index for r in raw.rank(PAIRS_QUERY, TEXTS)]
    kept_prob = [r.index for r in prob.rank(PAIRS_QUERY, TEXTS)]
    assert kept_raw == kept_prob
    assert kept_raw == sorted(range(len(TEXTS)), key=lambda i: -scores[i])[:2]
