"""Model cards (README.md) made from an agent's JSON card: Hub metadata that parses, text that says how to load."""

from __future__ import annotations

import pytest

from seqpolicy.common.model_card import model_card

CARD = {"name": "dt: toy", "artifact": "dt-toy", "kind": "dt", "dataset": "pointreach/expert-v0",
        "evaluation": {"episodes": 10, "seeds": "0-9", "mean": 41.5, "std": 3.25, "ci95": [39.0, 43.0]}}


def test_card_without_a_d4rl_score_has_one_metric_and_parses():
    hub = pytest.importorskip("huggingface_hub", reason="needs the test extra: pip install -e .[test]")
    text = model_card(CARD, "seqpolicy/PointReach-v0")
    data = hub.ModelCard(text).data
    (result,) = data.eval_results
    assert (result.metric_type, result.metric_value) == ("mean_reward", "41.50 +/- 3.25")
    assert result.dataset_name == "seqpolicy/PointReach-v0" and data.model_name == "Decision Transformer (dt: toy)"
    assert "D4RL" not in text
    assert 'DecisionTransformerModel.from_pretrained("dt-toy")' in text


def test_bc_card_does_not_promise_a_transformers_folder():
    text = model_card({**CARD, "kind": "bc"}, "seqpolicy/PointReach-v0")
    assert "Behaviour cloning" in text and "from_pretrained" not in text
