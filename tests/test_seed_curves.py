"""envs/seed_curves.py: every training seed's held-out curve from its card, beside the test scores."""

from __future__ import annotations

import json

import pytest
from conftest import load_envs_script


@pytest.fixture(scope="module")
def curves():
    return load_envs_script("seed_curves")


def card(folder, seed: int, points: list[dict]) -> None:
    path = folder / "seeds" / "dt-medium" / str(seed) / "card.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"seed": seed, "held_out_curve": {"points": points}}))


def test_curves_come_from_the_cards_and_returns_are_normalised_where_a_card_kept_only_them(curves, tmp_path):
    from seqpolicy.evaluation.scores import d4rl_normalize, d4rl_reference

    card(tmp_path, 10, [{"step": 100, "return": 1000.0, "normalized": 31.0}, {"step": 200, "return": 1200.0,
                                                                                "normalized": 37.0}])
    card(tmp_path, 2, [{"step": 100, "return": 500.0}])
    card(tmp_path, 3, [])  # no curve: left out
    got = curves.seed_curves(tmp_path, "dt-medium", "Hopper-v4")
    assert list(got) == [2, 10]  # by seed number, not by name
    assert got[10] == [(100, 31.0), (200, 37.0)]
    assert got[2] == [(100, pytest.approx(float(d4rl_normalize(500.0, d4rl_reference("Hopper-v4")))))]


def test_a_final_weights_designated_seed_brings_its_own_curve(curves, tmp_path):
    """The designated seed's card (envs/<EnvId>/<artifact>/card.json, written by make_agents.py ship for final
    weights) counts as its seed; a seed folder of the same number wins, and a selected agent's card never counts."""
    card(tmp_path, 1, [{"step": 100, "return": 0.0, "normalized": 5.0}])
    designated = tmp_path / "dt-medium" / "card.json"
    designated.parent.mkdir()
    designated.write_text(json.dumps({"seed": 0, "held_out_curve": {"points": [{"step": 100, "normalized": 9.0}]}}))
    assert curves.seed_curves(tmp_path, "dt-medium", "Hopper-v4") == {0: [(100, 9.0)], 1: [(100, 5.0)]}
    designated.write_text(json.dumps({"seed": 1, "held_out_curve": {"points": [{"step": 100, "normalized": 9.0}]}}))
    assert curves.seed_curves(tmp_path, "dt-medium", "Hopper-v4") == {1: [(100, 5.0)]}
    designated.write_text(json.dumps({"seed": 0, "selected": {"how": "kept best"},
                                      "held_out_curve": {"points": [{"step": 100, "normalized": 9.0}]}}))
    assert curves.seed_curves(tmp_path, "dt-medium", "Hopper-v4") == {1: [(100, 5.0)]}


def test_the_chart_shows_tests_and_the_selected_agent(curves, tmp_path):
    pytest.importorskip("matplotlib")
    card(tmp_path, 0, [{"step": 100, "return": 1000.0, "normalized": 31.0}])
    results = tmp_path / "results" / "seeds"
    results.mkdir(parents=True)
    (results / "dt-0.json").write_text(json.dumps({"evaluations": [{"evaluation": {"normalized": {"mean": 33.5}}}]}))
    (tmp_path / "dt-medium").mkdir()
    (tmp_path / "dt-medium" / "card.json").write_text(json.dumps({"selected": {"how": "kept best"},
                                                                  "evaluation": {"d4rl_normalized": 48.5}}))
    assert curves.test_scores(tmp_path, "dt", [0, 1]) == {0: 33.5}  # seed 1 has no result yet
    assert curves.selected_test_score(tmp_path, "dt-medium") == 48.5
    out = curves.plot("Hopper-v4", "dt", curves.seed_curves(tmp_path, "dt-medium", "Hopper-v4"), {0: 33.5}, 48.5,
                      tmp_path / "out" / "dt.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_agent_without_curves_is_refused_with_what_records_them(curves):
    with pytest.raises(SystemExit, match="no zoo agent 'nope'"):
        curves.main(["--env", "Hopper-v4", "--agent", "nope"])
    with pytest.raises(SystemExit, match="keeps a held-out curve"):
        curves.main(["--env", "Hopper-v4", "--agent", "td3"])
