"""The TT prediction report: its numbers on a tiny trained TT, its maths against a model that knows the data, the
episode split, and ``seqpolicy-tt-report`` end to end and on bad input."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from conftest import TOY_ID
from test_cli_errors import run
from torch import nn

from seqpolicy.agents.tt.tokens import SequenceSampler, joined_rows
from seqpolicy.evaluation.prediction import TOKEN_KINDS, prediction_report, split_episodes
from seqpolicy.training.tt import TTTrainConfig, train_tt

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine

TINY = TTTrainConfig.preset("pointreach", n_embd=32, batch_size=32, max_steps=60, eval_every=0, checkpoint_every=0,
                            device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def tiny_tt(toy_data):
    """A TT trained for 60 steps on 40 PointReach episodes (about 2 s on one thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tt(toy_data, TINY, env_id=TOY_ID, progress=False)
    finally:
        torch.set_num_threads(n)


class KnowsTheData(nn.Module):
    """A stand-in TT whose logits put all their mass on the true next token (moved by ``shift`` bins), looked up
    from every training window of the data: what a perfect model would predict."""

    def __init__(self, agent, data, shift: int = 0):
        super().__init__()
        self.config = agent.model.config
        cfg = agent.info["train_config"]
        k = cfg["seq_transitions"]
        sampler = SequenceSampler(joined_rows(data, cfg["discount"], cfg["termination_penalty"]), agent.discretizer,
                                  k, 1000, torch.device("cpu"))
        self.next = {}
        for start in sampler.starts.tolist():
            seq = sampler.tokens[start:start + k].long().flatten()
            self.next[tuple(seq[:-1].tolist())] = seq[1:]
        self.shift = shift

    def forward(self, tokens: torch.Tensor):
        n = self.config.vocab_size
        target = torch.stack([self.next[tuple(row.tolist())] for row in tokens])  # (B, L)
        target = torch.where(target == n, n, (target + self.shift).clamp(max=n - 1))  # stop tokens stay
        return nn.functional.one_hot(target, n + 1).float() * 60.0, None  # (B, L, N+1): certain


def test_report_on_a_tiny_trained_tt_is_in_range_and_beats_an_untrained_one(tiny_tt, toy_data):
    report = prediction_report(tiny_tt, toy_data, n_windows=400, seed=0)
    c = tiny_tt.model.config
    assert report.windows == 400 and report.n_episodes == len(toy_data) and report.seq_transitions == 3
    k = report.kinds
    assert list(k)[:4] == list(TOKEN_KINDS)
    # every data row is a target but a window's first observation token; stop rows are left out
    assert k["reward"].tokens == k["value"].tokens < 400 * 3
    assert k["observation"].tokens == c.observation_dim * k["reward"].tokens - 400
    assert k["action"].tokens == c.action_dim * k["reward"].tokens
    for s in k.values():
        assert 0 <= s.accuracy <= s.within_one_bin <= 1 and 0 < s.cross_entropy < 10
    for kind in ("reward", "value"):
        s = k[kind]
        assert s.mae >= 0 and -1 <= s.correlation <= 1 and s.data_std > 0 and 0 <= s.discretization_mae < s.data_std
    assert all(0 <= a <= 1 for a in report.accuracy_per_dimension)
    # an untrained model of the same shape predicts every kind worse
    untrained = train_tt(toy_data, TINY, env_id=TOY_ID, progress=False, max_steps=1, learning_rate=1e-9)
    before = prediction_report(untrained, toy_data, n_windows=400, seed=0)
    for kind in TOKEN_KINDS:
        assert report.kinds[kind].cross_entropy < before.kinds[kind].cross_entropy - 0.05, kind
    doc = json.loads(json.dumps(report.to_json()))  # plain JSON
    assert doc["kinds"]["value"]["mae"] == pytest.approx(k["value"].mae)
    assert "| value |" in report.to_markdown()


def test_the_windows_are_a_deterministic_draw(tiny_tt, toy_data):
    def numbers(seed, n=200):
        doc = prediction_report(tiny_tt, toy_data, n_windows=n, seed=seed).to_json()
        return {k: v for k, v in doc.items() if k != "wall_s"}

    assert numbers(0) == numbers(0)
    assert numbers(0) != numbers(1)
    everything = prediction_report(tiny_tt, toy_data, n_windows=10**6)
    assert everything.windows == sum(len(ep) - 1 for ep in toy_data)  # every start the trainer draws from, once
    # a terminated episode's last reward is a target in the k - 1 windows that reach it
    k = everything.kinds
    assert list(k) == [*TOKEN_KINDS, "reward_at_termination", "reward_elsewhere"]
    assert k["reward_at_termination"].tokens == 2 * sum(ep.terminated for ep in toy_data) > 0
    assert k["reward_at_termination"].tokens + k["reward_elsewhere"].tokens == k["reward"].tokens
    assert k["reward_at_termination"].data_std == 0 < k["reward_elsewhere"].data_std  # all the penalty, -100


def test_a_model_that_knows_the_data_is_perfect(tiny_tt, toy_data, monkeypatch):
    monkeypatch.setattr(tiny_tt, "model", KnowsTheData(tiny_tt, toy_data))
    report = prediction_report(tiny_tt, toy_data, n_windows=300, seed=3)
    for kind, s in report.kinds.items():
        assert s.accuracy == 1.0 and s.within_one_bin == 1.0, kind
        assert s.cross_entropy < 1e-6, kind
    for kind in ("reward", "value"):
        s = report.kinds[kind]
        # certain of the right bin: the expectation is the bin's midpoint, so only the discretizer's error is left
        assert s.mae == pytest.approx(s.discretization_mae, rel=1e-6)
        assert s.correlation > 0.95 and s.mae < 0.2 * s.data_std
    assert all(a == 1.0 for a in report.accuracy_per_dimension)


def test_one_bin_off_is_wrong_but_within_one_bin(tiny_tt, toy_data, monkeypatch):
    monkeypatch.setattr(tiny_tt, "model", KnowsTheData(tiny_tt, toy_data, shift=1))
    report = prediction_report(tiny_tt, toy_data, n_windows=300, seed=3)
    for kind, s in report.kinds.items():
        assert s.within_one_bin == 1.0, kind
        assert s.accuracy < 0.2 and s.cross_entropy > 10, kind  # right only where the top bin clamps onto itself


def test_split_episodes_is_seeded_disjoint_and_complete(toy_data):
    rest, held = split_episodes(toy_data, 0.25, seed=7)
    assert len(held) == 10 and len(rest) == 30
    ids = {id(ep) for ep in held.episodes}
    assert ids.isdisjoint(id(ep) for ep in rest.episodes)
    assert ids | {id(ep) for ep in rest.episodes} == {id(ep) for ep in toy_data.episodes}
    assert [id(ep) for ep in split_episodes(toy_data, 0.25, seed=7)[1].episodes] == [id(ep) for ep in held.episodes]
    assert [id(ep) for ep in split_episodes(toy_data, 0.25, seed=8)[1].episodes] != [id(ep) for ep in held.episodes]
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_episodes(toy_data, 1.0)
    with pytest.raises(ValueError, match="leaves none to train on"):
        split_episodes(toy_data.subset([0, 1]), 0.9)


def test_holdout_reads_only_the_held_out_episodes(tiny_tt, toy_data):
    report = prediction_report(tiny_tt, toy_data, n_windows=10**6, seed=5, holdout_fraction=0.25)
    held = split_episodes(toy_data, 0.25, seed=5)[1]
    assert report.n_episodes == 10 and report.windows == sum(len(ep) - 1 for ep in held)
    assert "held-out 25%" in report.episodes and "held-out 25%" in report.to_markdown()


def test_data_of_another_env_is_refused(tiny_tt):
    from seqpolicy.data.trajectories import Episode, Trajectories

    other = Trajectories([Episode(np.zeros((5, 3)), np.zeros((5, 1)), np.zeros(5))] * 2)
    with pytest.raises(ValueError, match="observations of size 3 and actions of size 1"):
        prediction_report(tiny_tt, other)


# -- seqpolicy-tt-report ------------------------------------------------------------------------------------------

def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    return run("tt_report", argv, capsys)


def test_cli_writes_the_table_and_json(tiny_tt, tmp_path, capsys):
    tiny_tt.save(tmp_path / "agent")
    code, out, err = run_cli(["--agent", str(tmp_path / "agent"), "--dataset", "pointreach-mixed", "--windows", "50",
                              "--holdout-fraction", "0.2", "--json", str(tmp_path / "report.json")], capsys)
    assert code == 0, err
    assert "| observation |" in out and "held-out 20%" in out and "json: " in out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["windows"] == 50 and doc["dataset"] == "pointreach-mixed" and doc["n_episodes"] == 60
    assert set(doc["kinds"]) == set(TOKEN_KINDS) and not math.isnan(doc["kinds"]["reward"]["mae"])


@pytest.mark.parametrize("argv, message", [
    (["--agent", "{tmp}/agent", "--holdout-fraction", "1"], r"--holdout-fraction: must be between 0 and 1"),
    (["--agent", "{tmp}/agent", "--windows", "0"], r"--windows: must be at least 1"),
    (["--agent", "tt"], r"--agent tt is not a folder: pass a saved agent's path, or --env"),
    (["--agent", "{tmp}/dt"], r"is a DecisionTransformerAgent: the report reads a Trajectory Transformer"),
    (["--agent", "{tmp}/agent"], r"No Minari dataset|not found|does not exist"),  # its own dataset id is not local
    (["--agent", "{tmp}/agent", "--dataset", "{tmp}/other.npz"], r"observations of size"),
    (["--agent", "{tmp}/agent", "--dataset", "pointreach-mixed", "--json", "{tmp}"], r"--json .* is a folder"),
    (["--agent", "{tmp}/missing"], r"missing"),
])
def test_cli_refuses_bad_input_in_one_line(argv, message, tiny_tt, tmp_path, capsys, monkeypatch):
    from conftest import make_dt_agent

    from seqpolicy.data.trajectories import Episode, Trajectories

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    tiny_tt.save(tmp_path / "agent")
    import gymnasium as gym

    make_dt_agent(gym.make(TOY_ID)).save(tmp_path / "dt")
    Trajectories([Episode(np.zeros((5, 3)), np.zeros((5, 1)), np.zeros(5))] * 2).save(tmp_path / "other.npz")
    code, out, err = run_cli([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("seqpolicy-tt-report: error: "), err
    assert re.search(message, err), err


def test_cli_help_fits_100_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "--holdout-fraction" in out
    assert not [line for line in out.splitlines() if len(line) >= 100]


# -- the report in a zoo card ---------------------------------------------------------------------------------------

def test_model_card_shows_the_report_table_command_and_data(tiny_tt, toy_data):
    from seqpolicy.common.model_card import model_card

    table = prediction_report(tiny_tt, toy_data, n_windows=50).to_markdown()
    card = {"name": "tt", "artifact": "tt-toy", "kind": "tt",
            "evaluation": {"episodes": 10, "seeds": "0-9", "mean": 41.5, "std": 3.25, "ci95": [39.0, 43.0]},
            "prediction_report": {"table": table, "command": "seqpolicy-tt-report --agent tt-toy", "data": "windows",
                                  "notes": "a note"}}
    text = model_card(card, TOY_ID)
    assert "## Next-token prediction" in text and table in text and "a note" in text
    assert "`seqpolicy-tt-report --agent tt-toy`: windows." in text
    del card["prediction_report"]
    assert "Next-token" not in model_card(card, TOY_ID)


def test_zoo_tt_cards_report_on_the_shipped_weights():
    """Every shipped zoo TT has a prediction report in its card, made from the weights it ships (a retrained TT
    needs ``make_agents.py --env ENV report tt`` again)."""
    import hashlib
    from pathlib import Path

    shipped = []
    for preset in sorted((Path(__file__).resolve().parents[1] / "envs").glob("*/manifest.json")):
        rel = json.loads(preset.read_text())["agents"].get("tt")
        folder = preset.parent / rel if rel else None
        if folder is None or not folder.is_dir():
            continue
        shipped.append(preset.parent.name)
        card = json.loads((folder / "card.json").read_text())
        assert "prediction_report" in card, f"{preset.parent.name}: run make_agents.py report tt, then cards"
        report = card["prediction_report"]
        weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert report["weights_sha256"] == weights, f"{preset.parent.name} stale: run {report['command']}"
        assert report["command"].startswith("seqpolicy-tt-report ") and report["data"]
        assert set(report["report"]["kinds"]) >= set(TOKEN_KINDS)
    assert "Hopper-v4" in shipped
