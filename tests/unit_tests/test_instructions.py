"""`instruction=`: passed the way each model reads it, refused where it cannot be.

Doubles pin the engine's rules; the shared stand-ins (tests/conftest.py: BERT,
and the Qwen3-style causal LM with Qwen3-Reranker's chat template) pin what
sentence-transformers does with it. Every family's refusal or acceptance, on
every door, is in test_family_instructions.py.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from doubles import InstructedCrossEncoder, WordOverlapCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import InstructionNotSupportedError
from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.identity import scoring_identity
from langchain_ce_rerank.engine.instructions import instruction_refusal

NO_SYSTEM_TEMPLATE = (
    "{%- for m in messages -%}{%- if m.role == 'query' -%}<Query>: {{ m.content }}\n"
    "{%- elif m.role == 'document' -%}<Document>: {{ m.content }}\n"
    "{%- endif -%}{%- endfor -%}<|im_start|>assistant\n"
)
"""A pair-only template: a system message has nowhere to go."""


@pytest.fixture(scope="module")
def pair_only_path(
    causal_lm_standin_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The causal-LM stand-in with a chat template that drops the system turn."""
    folder = tmp_path_factory.mktemp("pair-only") / "model"
    shutil.copytree(causal_lm_standin_path, folder)
    (folder / "chat_template.jinja").write_text(NO_SYSTEM_TEMPLATE, encoding="utf-8")
    return folder


# -- the engine's rules, with doubles ------------------------------------------


def test_instruction_reaches_the_scorer_and_a_call_overrides_it() -> None:
    scorer = InstructedCrossEncoder()
    engine = Reranker(model=scorer, instruction="find statutes")
    engine.score("tax", ["statutes of tax"])
    engine.score("tax", ["statutes of tax"], instruction="find cases")
    engine.score("tax", ["statutes of tax"], instruction=None)
    assert [call[0] for call in scorer.calls] == ["find statutes", "find cases", None]


def test_the_instruction_changes_the_score() -> None:
    engine = Reranker(model=InstructedCrossEncoder())
    plain = engine.score("tax", ["statutes of tax"])
    instructed = engine.score("tax", ["statutes of tax"], instruction="find statutes")
    assert instructed[0] > plain[0]


def test_same_pair_under_two_instructions_shares_no_cached_score() -> None:
    scorer = InstructedCrossEncoder()
    engine = Reranker(model=scorer)
    first = engine.score("tax", ["statutes of tax"], instruction="find statutes")
    second = engine.score("tax", ["statutes of tax"], instruction="find cases")
    assert len(scorer.calls) == 2
    assert first != second
    engine.score("tax", ["statutes of tax"], instruction="find statutes")
    engine.score("tax", ["statutes of tax"])
    engine.score("tax", ["statutes of tax"])
    # The repeat under "find statutes" and the second plain call are hits.
    assert len(scorer.calls) == 3
    assert engine.cache_info().hits == 2


def test_a_scorer_without_instructions_refuses_one_before_scoring() -> None:
    scorer = WordOverlapCrossEncoder()
    engine = Reranker(model=scorer, instruction="find statutes")
    with pytest.raises(InstructionNotSupportedError) as caught:
        engine.rank("tax", ["statutes of tax"])
    message = str(caught.value)
    assert "WordOverlapCrossEncoder" in message
    assert "instruction=" in message
    assert "Leave instruction= unset" in message
    assert scorer.calls == 0
    # Without one, the same scorer works as before (no keyword is passed).
    assert Reranker(model=scorer).score("tax", ["statutes of tax"]) == [1.0]


def test_the_refusal_speaks_the_callers_words() -> None:
    err = InstructionNotSupportedError("m", "no place for it")
    reworded = err.with_parameter("--instruction")
    assert "--instruction" in str(reworded)
    assert "instruction=" not in str(reworded)
    assert reworded.model == "m"
    assert reworded.reason == "no place for it"


@pytest.mark.parametrize("bad", ["", "   "])
def test_a_blank_instruction_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="instruction is empty"):
        Reranker(model=InstructedCrossEncoder(), instruction=bad)
    engine = Reranker(model=InstructedCrossEncoder())
    with pytest.raises(ValueError, match="instruction is empty"):
        engine.score("q", ["t"], instruction=bad)


def test_a_non_string_instruction_is_refused() -> None:
    with pytest.raises(ValidationError):
        Reranker(model=InstructedCrossEncoder(), instruction=3)
    with pytest.raises(TypeError, match="instruction must be a string"):
        Reranker(model=InstructedCrossEncoder()).score("q", ["t"], instruction=3)  # type: ignore[arg-type]


def test_the_instruction_is_part_of_the_scoring_identity() -> None:
    scorer = InstructedCrossEncoder()
    plain = scoring_identity(Reranker(model=scorer))
    instructed = scoring_identity(Reranker(model=scorer, instruction="find statutes"))
    assert plain.instruction is None
    assert instructed.differences(plain) == [
        "instruction: fitted with 'find statutes', here None"
    ]


def test_rank_batch_and_deadline_and_async_paths_carry_it() -> None:
    scorer = InstructedCrossEncoder()
    engine = Reranker(model=scorer, cache_size=0)
    engine.rank_batch([("tax", ["a"]), ("law", ["b"])], instruction="one")
    engine.rank("tax", ["c"], instruction="two", deadline_ms=1000)
    asyncio.run(engine.ascore_batch([("tax", ["d"])], instruction="three"))
    assert [call[0] for call in scorer.calls] == ["one", "two", "three"]


def test_a_scorer_can_decline_with_its_own_reason() -> None:
    class Declines:
        takes_instruction = False
        instruction_refusal = "the server's API has no field for it"

        def score(self, pairs: Any) -> list[float]:
            return [0.0 for _ in pairs]

    assert instruction_refusal(Declines()) == "the server's API has no field for it"


# -- sentence-transformers models ---------------------------------------------


def test_a_text_pair_model_without_prompts_refuses(standin_ce_path: Path) -> None:
    engine = Reranker(model=standin_ce_path, device="cpu")
    with pytest.raises(InstructionNotSupportedError) as caught:
        engine.score("q", ["t"], instruction="find statutes")
    assert str(standin_ce_path) in str(caught.value)
    assert "saved without sentence-transformers prompts" in str(caught.value)


def test_a_text_pair_model_with_prompts_reads_it_before_the_query(
    standin_ce_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Reranker(
        model=standin_ce_path,
        device="cpu",
        model_kwargs={"prompts": {"retrieval": "Retrieve: "}},
    )
    model: Any = engine.load_model()
    seen: list[Any] = []
    preprocess = model[0].preprocess

    def spy(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        features = preprocess(inputs, *args, **kwargs)
        seen.extend(model.tokenizer.batch_decode(features["input_ids"]))
        return features

    monkeypatch.setattr(model[0], "preprocess", spy)
    plain = engine.score("where is paris", ["paris is in france"])
    instructed = engine.score(
        "where is paris", ["paris is in france"], instruction="find capitals:"
    )
    assert "find capitals : where is paris" in seen[-1]
    assert "find capitals" not in seen[0]
    assert plain != instructed


def test_a_causal_reranker_reads_the_instruction_in_its_template(
    causal_lm_standin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Reranker(model=causal_lm_standin_path, device="cpu")
    model: Any = engine.load_model()
    assert instruction_refusal(model) is None
    seen: list[str] = []
    preprocess = model[0].preprocess

    def spy(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        features = preprocess(inputs, *args, **kwargs)
        seen.extend(model.tokenizer.batch_decode(features["input_ids"]))
        return features

    monkeypatch.setattr(model[0], "preprocess", spy)
    pair = ("where is paris", ["Paris is in France."])
    default = engine.score(*pair)
    instructed = engine.score(*pair, instruction="Find capital cities")
    # The engine also measures the pair without its document (to size the
    # document's share): keep only the pairs the model scored.
    scored = [text for text in seen if "<Document>: Paris is in France." in text]
    assert "<Instruct>: Given a web search query" in scored[0]
    assert "<Instruct>: Find capital cities\n<Query>: where is paris" in scored[1]
    assert default != instructed
    # What the engine returns is what sentence-transformers' own prompt gives.
    direct = model.predict(
        [("where is paris", "Paris is in France.")],
        prompt="Find capital cities",
        activation_fn=__import__("torch").nn.Identity(),
    )
    assert instructed == pytest.approx([float(direct[0])], abs=1e-6)


def test_a_causal_reranker_whose_template_drops_it_refuses(
    pair_only_path: Path,
) -> None:
    engine = Reranker(model=pair_only_path, device="cpu", instruction="Find capitals")
    with pytest.raises(InstructionNotSupportedError) as caught:
        engine.score("where is paris", ["Paris is in France."])
    assert "does not render the system message" in str(caught.value)
    assert Reranker(model=pair_only_path, device="cpu").score("q", ["t"])
