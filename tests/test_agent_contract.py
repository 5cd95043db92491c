"""The contract every agent keeps: shapes and bounds, reset, batched == loop of singles, save/load.

New agent kinds add a factory to AGENT_FACTORIES.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TOY_ID, make_dt_agent, rollout

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small models on a shared 2-core machine


def _dt(env):
    return make_dt_agent(env)


def _dt_load(agent, folder):
    from seqpolicy.agents.dt import DecisionTransformerAgent

    return DecisionTransformerAgent.load(folder)


def _bc(env):
    from seqpolicy.agents.bc import BCAgent, BCConfig, BCPolicy

    torch.manual_seed(0)
    policy = BCPolicy(BCConfig(env.observation_space.shape[0], env.action_space.shape[0], hidden_size=32))
    return BCAgent(policy, env.observation_space, env.action_space, state_mean=np.zeros(6), state_std=np.ones(6))


def _bc_load(agent, folder):
    from seqpolicy.agents.bc import BCAgent

    return BCAgent.load(folder)


def _tt(env):
    from test_tt_agent import make_tt_agent

    return make_tt_agent(env)  # the paper planner's sampling filters, with a small search


def _tt_load(agent, folder):
    from seqpolicy.agents.tt import TrajectoryTransformerAgent

    return TrajectoryTransformerAgent.load(folder)


def _sb3(env):
    from stable_baselines3 import TD3

    from seqpolicy.agents.sb3 import SB3Agent

    return SB3Agent(TD3("MlpPolicy", env, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu"))


def _sb3_load(agent, folder):
    from seqpolicy.agents.sb3 import SB3Agent

    return SB3Agent.load(folder.with_name(folder.name + ".zip"), trusted=True)  # made by this test


def _odt(env):
    from test_odt import make_odt_agent

    return make_odt_agent(env)  # acting with its mean action, the default (sampling: tests/test_odt.py)


def _odt_load(agent, folder):
    from seqpolicy.agents.odt import OnlineDTAgent

    return OnlineDTAgent.load(folder)


AGENT_FACTORIES = {"dt": (_dt, _dt_load), "bc": (_bc, _bc_load), "tt": (_tt, _tt_load), "sb3": (_sb3, _sb3_load),
                   "odt": (_odt, _odt_load)}



@pytest.fixture(params=sorted(AGENT_FACTORIES))
def kind(request):
    return request.param


def test_actions_have_env_shape_dtype_and_bounds(kind, toy_env):
    agent = AGENT_FACTORIES[kind][0](toy_env)
    acts = rollout(agent, toy_env, seed=0)
    assert acts.dtype == np.float32 and acts.shape[1:] == toy_env.action_space.shape
    assert np.all(acts >= toy_env.action_space.low) and np.all(acts <= toy_env.action_space.high)


def test_reset_clears_context(kind, toy_env):
    agent = AGENT_FACTORIES[kind][0](toy_env)
    first = rollout(agent, toy_env, seed=1)
    rollout(agent, toy_env, seed=2)
    again = rollout(agent, toy_env, seed=1)
    np.testing.assert_array_equal(first, again)


def test_batched_equals_loop_of_singles_with_autoreset(kind, toy_env):
    """A 3-env batch with per-env resets at different times gives each env's single-agent actions."""
    n, steps = 3, 40
    singles = [AGENT_FACTORIES[kind][0](toy_env) for _ in range(n)]
    batched = AGENT_FACTORIES[kind][0](toy_env)
    envs = [gym.make(TOY_ID) for _ in range(n)]
    obs = np.stack([e.reset(seed=10 + i)[0] for i, e in enumerate(envs)])
    rewards = None
    single_rewards = [None] * n
    episode_len = [7, 11, 40]  # envs 0 and 1 restart mid-run (like Gymnasium's autoreset)
    t_in_ep = [0] * n
    for _ in range(steps):
        a_batch = batched.act(obs, rewards)
        a_single = np.stack([singles[i].act(obs[i], single_rewards[i]) for i in range(n)])
        np.testing.assert_allclose(a_batch, a_single, atol=1e-5)
        new_obs, new_r, done = [], [], np.zeros(n, dtype=bool)
        for i, e in enumerate(envs):
            o, r, term, trunc, _ = e.step(a_batch[i])
            t_in_ep[i] += 1
            if term or trunc or t_in_ep[i] == episode_len[i]:
                o, _ = e.reset(seed=100 + i)
                done[i], t_in_ep[i] = True, 0
                singles[i].reset()
                single_rewards[i] = None
            else:
                single_rewards[i] = r
            new_obs.append(o)
            new_r.append(r)
        batched.reset(envs=done)
        obs, rewards = np.stack(new_obs), np.array(new_r)


def test_save_load_gives_identical_actions(kind, toy_env, tmp_path):
    factory, loader = AGENT_FACTORIES[kind]
    agent = factory(toy_env)
    agent.save(tmp_path / "agent")
    loaded = loader(agent, tmp_path / "agent")
    np.testing.assert_array_equal(rollout(agent, toy_env, seed=3), rollout(loaded, toy_env, seed=3))


def test_predict_in_sb3_vec_env_equals_act(kind):
    """SB3's predict() over a DummyVecEnv (RewardFeed handing over rewards and dones, envs ending at different
    steps and auto-reset by SB3) gives each env's single-agent act() actions; episode_start alone resets too."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from seqpolicy.agents.reward_feed import RewardFeed

    lengths = [7, 11, 40]
    venv = DummyVecEnv([lambda n=n: gym.make(TOY_ID, max_episode_steps=n) for n in lengths])
    venv.seed(10)
    batched = AGENT_FACTORIES[kind][0](venv.envs[0])
    feed = RewardFeed(venv, batched)
    singles = [AGENT_FACTORIES[kind][0](venv.envs[0]) for _ in lengths]
    obs = feed.reset()
    single_rewards = [None] * len(lengths)
    restarts = 0
    for _ in range(30):
        actions, state = batched.predict(obs, episode_start=None, deterministic=True)  # the feed knows the dones
        assert state is None and actions.shape == (len(lengths), 2)
        expected = np.stack([s.act(o, r) for s, o, r in zip(singles, obs, single_rewards, strict=True)])
        np.testing.assert_allclose(actions, expected, atol=1e-5)
        obs, rewards, dones, _ = feed.step(actions)
        for i in np.flatnonzero(dones):
            singles[i].reset()
            restarts += 1
        single_rewards = [None if d else r for r, d in zip(rewards, dones, strict=True)]
    assert restarts >= 3  # envs 0 and 1 restarted mid-run
    # episode_start marks a new episode on its own too (SB3's loops pass it)
    first, _ = batched.predict(obs, episode_start=np.ones(len(lengths), dtype=bool))
    for s in singles:
        s.reset()
    np.testing.assert_allclose(first, np.stack([s.act(o) for s, o in zip(singles, obs, strict=True)]), atol=1e-5)


def test_predict_without_rewards(kind, toy_env):
    """Agents that act on rewards refuse a second predict() with no rewards; the others need none."""
    agent = AGENT_FACTORIES[kind][0](toy_env)
    obs, _ = toy_env.reset(seed=0)
    agent.predict(obs[None], episode_start=np.ones(1, dtype=bool))
    obs, *_ = toy_env.step(agent.action_space.sample())
    if agent.uses_rewards:
        with pytest.raises(RuntimeError, match=r"no rewards for the previous step.*seqpolicy\.RewardFeed"):
            agent.predict(obs[None], episode_start=np.zeros(1, dtype=bool))
    else:
        actions, _ = agent.predict(obs[None], episode_start=np.zeros(1, dtype=bool))
        assert actions.shape == (1, 2)


def test_a_reward_before_the_first_step_or_given_as_text_is_refused(kind, toy_env):
    """No step has been taken at the first act() after reset(), so a reward there (one env or a vector of them)
    is refused, and so is a reward given as a string; SB3's predict() over a RewardFeed and the evaluation loop,
    where every env ends at the same step, still act."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from seqpolicy.agents.reward_feed import RewardFeed
    from seqpolicy.evaluation.evaluate import evaluate

    agent = AGENT_FACTORIES[kind][0](toy_env)
    obs, _ = toy_env.reset(seed=0)
    agent.reset()
    first = r"reward 0\.0 was passed to the first act\(\) after reset\(\).*Pass None"
    with pytest.raises(ValueError, match=first):
        agent.act(obs, 0.0)
    action = agent.act(obs)  # the refused call changed nothing
    obs, reward, *_ = toy_env.step(action)
    with pytest.raises(TypeError, match=r"reward must be a number .*got str '1\.0'"):
        agent.act(obs, "1.0")
    agent.act(obs, reward)
    batch = np.stack([obs, obs])
    agent.reset()
    with pytest.raises(ValueError, match=r"reward array\(\[0\., 0\.\]\) was passed to the first act\(\)"):
        agent.act(batch, np.zeros(2))
    agent.act(batch)
    with pytest.raises(TypeError, match="reward must be a number"):
        agent.act(batch, np.array(["1.0", "2.0"]))
    agent.reset(envs=[0])
    agent.act(batch, np.array([5.0, 1.0]))  # env 0 restarted: its entry is ignored, as documented

    venv = DummyVecEnv([lambda: gym.make(TOY_ID, max_episode_steps=6)] * 2)  # both end at every 6th step
    venv.seed(0)
    feed = RewardFeed(venv, agent)
    obs = feed.reset()
    for _ in range(14):
        obs, *_ = feed.step(agent.predict(obs)[0])
    result = evaluate(agent, TOY_ID, n_episodes=4, n_envs=2, max_episode_steps=5)
    assert result.lengths == [5, 5, 5, 5]
