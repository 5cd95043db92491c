"""SB3 baselines on a tiny budget: checkpoints with evaluation returns, the replay buffer, SB3Agent."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from seqpolicy.agents.sb3 import SB3Agent  # noqa: E402
from seqpolicy.data.trajectories import Trajectories  # noqa: E402
from seqpolicy.training.baseline import ZOO_HYPERPARAMS, BaselineConfig, train_baseline  # noqa: E402

ENV = "seqpolicy/PointReach-v0"


@pytest.fixture(scope="module")
def td3_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("td3")
    cfg = BaselineConfig(algo="td3", env_id=ENV, steps=300, checkpoint_every=150, eval_episodes=2,
                         keep_replay=True, overrides={"learning_starts": 100, "net_arch": [32, 32]})
    return train_baseline(cfg, out, progress=False), out


def test_td3_smoke_run_writes_checkpoints_cards_and_replay(td3_run):
    result, out = td3_run
    assert result.status == "finished" and result.steps == 300
    assert [c["step"] for c in result.checkpoints] == [150, 300]
    for c in result.checkpoints:
        assert (out / c["zip"]).is_file()
        card = json.loads((out / c["zip"]).with_suffix(".json").read_text())
        assert len(card["eval_returns"]) == 2
        assert card["eval_return_mean"] == pytest.approx(np.mean(card["eval_returns"]), abs=1e-3)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["hyperparams"]["learning_starts"] == 100
    assert (out / "final.zip").is_file()

    with np.load(out / "replay.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert len(arrays["rewards"]) == 300
    data = Trajectories.from_arrays(**arrays)
    # PointReach episodes are 50 steps unless the point leaves the arena: every time-limit end is at 50
    assert all(len(ep) == 50 for ep in data.episodes[:-1] if not ep.terminated)
    assert data.lengths.sum() == 300
    # consecutive transitions chain: next_observations[t] == observations[t + 1] inside an episode
    ends = np.flatnonzero(arrays["terminals"] | arrays["timeouts"])
    inside = np.setdiff1d(np.arange(299), ends)
    np.testing.assert_allclose(arrays["next_observations"][inside], arrays["observations"][inside + 1])


def test_sb3_agent_matches_model_predict_single_and_batched(td3_run):
    _, out = td3_run
    with pytest.warns(UserWarning, match="unpickle"):
        agent = SB3Agent.load(out / "final.zip")
    assert agent.name == "TD3"  # read from the zip's JSON metadata, nothing unpickled
    env = gym.make(ENV)
    obs = np.stack([env.reset(seed=i)[0] for i in range(4)])
    expected = agent.model.predict(obs, deterministic=True)[0]
    agent.reset()
    np.testing.assert_allclose(agent.act(obs), expected, atol=1e-6)
    agent.reset()
    singles = []
    for o in obs:
        agent.reset()
        singles.append(agent.act(o))
    np.testing.assert_allclose(np.stack(singles), expected, atol=1e-6)
    assert np.all(np.abs(expected) <= 2.0)


def test_sb3_agent_bad_inputs(td3_run, tmp_path):
    _, out = td3_run
    with pytest.raises(FileNotFoundError, match="No SB3 model"):
        SB3Agent.load(tmp_path / "missing.zip", trusted=True)
    agent = SB3Agent.load(out / "final.zip", trusted=True)
    with pytest.raises(ValueError, match=r"obs has shape \(11,\), expected \(6,\)"):
        agent.act(np.zeros(11))


def test_budget_stops_gracefully_and_saves(tmp_path):
    cfg = BaselineConfig(algo="sac", env_id=ENV, steps=100_000, checkpoint_every=50_000, eval_episodes=1,
                         max_minutes=0.002, overrides={"learning_starts": 50, "net_arch": [16]})
    result = train_baseline(cfg, tmp_path, progress=False)
    assert result.status == "budget" and result.steps < 100_000
    assert (tmp_path / "final.zip").is_file()
    assert json.loads((tmp_path / "final.json").read_text())["status"] == "budget"


def test_config_validation():
    with pytest.raises(ValueError, match="algo='dqn' is not supported"):
        BaselineConfig(env_id=ENV, algo="dqn")
    with pytest.raises(ValueError, match="PPO has no replay buffer"):
        BaselineConfig(env_id=ENV, algo="ppo", keep_replay=True)
    with pytest.raises(ValueError, match=r"Unknown hyperparameter\(s\) for td3: \['lr'\]"):
        BaselineConfig(env_id=ENV, algo="td3", overrides={"lr": 1e-3})


def test_trained_algorithms_are_loadable_ones_and_the_cli_offers_them():
    from seqpolicy.agents.sb3 import ALGOS
    from seqpolicy.cli.baseline import build_parser
    from seqpolicy.training.baseline import BASELINE_ALGOS

    assert BASELINE_ALGOS == ("sac", "td3", "ppo")
    assert {a.upper() for a in BASELINE_ALGOS} <= set(ALGOS)
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    algo = next(a for a in train._actions if a.dest == "algo")
    assert tuple(algo.choices) == BASELINE_ALGOS


def test_rl_zoo_hyperparameters_per_env():
    """rl-zoo gives the three locomotion envs the same TD3 and SAC settings and a PPO tuning each; other envs get
    the PPO defaults; overrides win."""
    envs = ("Hopper-v4", "HalfCheetah-v4", "Walker2d-v4")
    for algo in ("td3", "sac"):
        assert all(BaselineConfig(env_id=e, algo=algo).hyperparams() == ZOO_HYPERPARAMS[algo] for e in envs)
    ppo = {e: BaselineConfig(env_id=e, algo="ppo").hyperparams() for e in (*envs, ENV)}
    assert [ppo[e]["gamma"] for e in envs] == [0.999, 0.98, 0.99]
    assert ppo[ENV] == ZOO_HYPERPARAMS["ppo"]
    assert BaselineConfig(env_id="Walker2d-v5", algo="ppo", overrides={"gamma": 0.9}).hyperparams()["gamma"] == 0.9


def test_ppo_smoke(tmp_path):
    cfg = BaselineConfig(algo="ppo", env_id=ENV, steps=128, checkpoint_every=128, eval_episodes=1,
                         overrides={"n_steps": 64, "batch_size": 32, "net_arch": [16]})
    result = train_baseline(cfg, tmp_path, progress=False)
    assert result.status == "finished" and result.steps == 128
    agent = SB3Agent.load(tmp_path / "final.zip", trusted=True)
    assert agent.name == "PPO"


def test_pick_expert_and_medium_follows_d4rl():
    from seqpolicy.training.baseline import pick_expert_and_medium

    cks = [{"step": s, "eval_return_mean": r} for s, r in
           [(10, 20.0), (20, 900.0), (30, 1150.0), (40, 3300.0), (50, 3000.0), (60, 1200.0)]]
    expert, medium = pick_expert_and_medium(cks)
    assert expert["step"] == 40
    assert medium["step"] == 30  # closest to 3300 / 3 = 1100 among the checkpoints before the expert
    with pytest.raises(ValueError, match="no earlier checkpoint"):
        pick_expert_and_medium([{"step": 10, "eval_return_mean": 5.0}, {"step": 20, "eval_return_mean": 1.0}])
