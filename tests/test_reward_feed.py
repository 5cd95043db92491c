"""Stable-Baselines3's own evaluation loop drives seqpolicy agents through predict() and RewardFeed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3", reason="needs the sb3 extra: pip install -e .[sb3]")

from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize  # noqa: E402

from seqpolicy.agents.reward_feed import RewardFeed  # noqa: E402
from seqpolicy.evaluation.evaluate import evaluate  # noqa: E402
from seqpolicy.zoo import get_agent  # noqa: E402

N_ENVS, N_EPISODES = 4, 8


@pytest.fixture(autouse=True)
def _zoo_one_thread(monkeypatch):
    monkeypatch.delenv("SEQPOLICY_ENVS", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SeedEachReset(gym.Wrapper):
    """Resets with the next seed of a list: SB3's VecEnvs seed only the first reset, seqpolicy.evaluate seeds
    every episode (episode i with seed i, env j running episodes j, j + n_envs, ...)."""

    def __init__(self, env: gym.Env, seeds: list[int]):
        super().__init__(env)
        self.seeds = list(seeds)

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=self.seeds.pop(0) if self.seeds else None, options=options)


def _sb3_venv(env_id: str) -> DummyVecEnv:
    seeds = [list(range(j, N_EPISODES, N_ENVS)) for j in range(N_ENVS)]  # later resets (not scored): unseeded
    return DummyVecEnv([lambda s=s: Monitor(SeedEachReset(gym.make(env_id), s)) for s in seeds])


def test_evaluate_policy_on_the_zoo_dt_matches_seqpolicy_evaluate():
    """8 full Hopper-v4 episodes over 4 envs (each env runs 2, ending at different steps): SB3's evaluate_policy
    and seqpolicy.evaluate score the same episodes (seeds 0-7) with the same returns and lengths."""
    agent = get_agent("Hopper-v4", "dt", device="cpu")
    ours = evaluate(agent, "Hopper-v4", n_episodes=N_EPISODES, seed=0, n_envs=N_ENVS)

    scored: dict[int, tuple[float, int]] = {}
    count = np.zeros(N_ENVS, dtype=int)

    def record(local_vars, _globals):  # which env (hence which seed) each finished episode belongs to
        i = local_vars["i"]
        if local_vars["done"]:
            episode = local_vars["info"]["episode"]
            scored[i + N_ENVS * count[i]] = (episode["r"], episode["l"])
            count[i] += 1

    returns, lengths = evaluate_policy(agent, RewardFeed(_sb3_venv("Hopper-v4"), agent), n_eval_episodes=N_EPISODES,
                                       deterministic=True, return_episode_rewards=True, callback=record)
    assert sorted(scored) == list(range(N_EPISODES)) and len(returns) == N_EPISODES
    assert len(set(ours.lengths)) > 1  # episodes end at different steps: per-env resets happen mid-run
    assert [scored[i][1] for i in range(N_EPISODES)] == ours.lengths
    # Monitor rounds returns to 6 decimals
    np.testing.assert_allclose([scored[i][0] for i in range(N_EPISODES)], ours.returns, rtol=0, atol=1e-5)


def test_dt_without_the_reward_feed_refuses_to_act():
    agent = get_agent("Hopper-v4", "dt", device="cpu")
    venv = DummyVecEnv([lambda: Monitor(gym.make("Hopper-v4"))] * 2)
    with pytest.raises(RuntimeError, match=r"DecisionTransformerAgent\.predict\(\) has no rewards for the previous "
                                           r"step.*returns-to-go.*seqpolicy\.RewardFeed\(venv, agent\)"):
        evaluate_policy(agent, venv, n_eval_episodes=2)


def test_predict_twice_without_a_step_refuses_stale_returns_to_go():
    agent = get_agent("Hopper-v4", "dt", device="cpu")
    feed = RewardFeed(DummyVecEnv([lambda: gym.make("Hopper-v4")] * 2), agent)
    obs = feed.reset()
    actions, _ = agent.predict(obs)
    obs, *_ = feed.step(actions)
    agent.predict(obs)
    with pytest.raises(RuntimeError, match="no rewards for the previous step"):
        agent.predict(obs)  # the rewards of that step were consumed already


def test_reward_feed_refuses_normalised_rewards_and_foreign_agents():
    agent = get_agent("Hopper-v4", "dt", device="cpu")
    venv = DummyVecEnv([lambda: gym.make("Hopper-v4")])
    with pytest.raises(ValueError, match="VecNormalize"):
        RewardFeed(VecNormalize(venv), agent)
    with pytest.raises(TypeError, match="has no observe"):
        RewardFeed(venv, object())


def test_reward_feed_refuses_an_agent_made_for_another_env_version():
    agent = get_agent("Walker2d-v4", "dt", device="cpu")
    venv = DummyVecEnv([lambda: gym.make("Walker2d-v5")])  # the same spaces as v4
    with pytest.raises(ValueError, match=r"made for Walker2d-v4, not Walker2d-v5.*allow_env_mismatch=True"):
        RewardFeed(venv, agent)
    feed = RewardFeed(venv, agent, allow_env_mismatch=True)
    assert feed.reset().shape == (1, 17)
