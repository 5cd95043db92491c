"""Shared fixtures: the tiny PointReach env, a small toy dataset and small untrained agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqpolicy  # noqa: F401  (registers seqpolicy/PointReach-v0)
from seqpolicy.common.threads import intra_op_threads

TOY_ID = "seqpolicy/PointReach-v0"

# The learning tests' bars: fractions of the scripted expert's mean return over 20 episodes (seeds 0-19).
# Set from the spread over training seeds 0-4 in fp32 and bf16 (benchmarks/learning_spread.py; on a 2-core AMD
# EPYC with AVX512-BF16, benchmarks/results/learning-spread-amd-epyc.json): DT 93.8-96.6%, BC 97.1-97.8%,
# TT 76.5-85.6%, each well above its trainer with a learning rate of 1e-12 (DT 14.2%, BC 12.9%, TT 9.4%).
# bf16 rounds differently on AMX (Intel) CPUs, so each bar sits 5-7 points below the lowest run measured.
LEARNING_BAR = {"dt": 0.88, "bc": 0.90, "tt": 0.70}


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine more threads than free cores makes small models far slower."""
    with intra_op_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """:func:`one_thread` for a whole test module."""
    with intra_op_threads(1):
        yield


@pytest.fixture
def toy_env():
    env = gym.make(TOY_ID)
    yield env
    env.close()


@pytest.fixture(scope="session")
def toy_data():
    from seqpolicy.toy import make_toy_dataset

    return make_toy_dataset(n_episodes=40, seed=0)


def make_dt_agent(env: gym.Env, context_length: int = 5, seed: int = 0, max_ep_len: int = 64):
    """An untrained DT agent with random (non-trivial) weights for env's spaces."""
    from seqpolicy.agents.dt import DecisionTransformerAgent
    from seqpolicy.models import DecisionTransformer, DTConfig

    torch.manual_seed(seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    model = DecisionTransformer(DTConfig(state_dim=obs_dim, act_dim=act_dim, hidden_size=32, n_layer=2, n_head=2,
                                         max_ep_len=max_ep_len))
    rng = np.random.default_rng(seed)
    return DecisionTransformerAgent(model, env.observation_space, env.action_space,
                                    state_mean=rng.normal(size=obs_dim), state_std=rng.uniform(0.5, 2, obs_dim),
                                    target_return=30.0, return_scale=10.0, context_length=context_length,
                                    env_id=TOY_ID)


@pytest.fixture
def dt_agent(toy_env):
    return make_dt_agent(toy_env)


@pytest.fixture(scope="session")
def trained_toy_dt():
    """A DT trained with the 'pointreach' preset on 300 mixed episodes (one thread), with its CPU seconds."""
    import time

    from seqpolicy.toy import make_toy_dataset
    from seqpolicy.training.dt import PRESETS

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: CPU time is the real cost, no spin-waiting
    try:
        data = make_toy_dataset(n_episodes=300, seed=0)
        t0 = time.process_time()
        agent = seqpolicy.train_dt(data, PRESETS["pointreach"], env_id=TOY_ID, eval_every=0, device="cpu",
                                   progress=False, precision="fp32")
        cpu_s = time.process_time() - t0
    finally:
        torch.set_num_threads(n)
    return agent, data, cpu_s


def rollout(agent, env, seed: int, steps: int = 30) -> np.ndarray:
    """Actions of ``agent`` on one episode of ``env`` reset with ``seed`` (stops early when it ends)."""
    agent.reset()
    obs, _ = env.reset(seed=seed)
    reward, actions = None, []
    for _ in range(steps):
        a = agent.act(obs, reward)
        actions.append(a)
        obs, reward, term, trunc, _ = env.step(a)
        if term or trunc:
            break
    return np.array(actions)


def load_envs_script(name: str):
    """Import envs/<name>.py (the zoo's scripts, not a package) as module ``envs_<name>``."""
    import importlib.util
    import sys
    from pathlib import Path

    envs = Path(__file__).resolve().parent.parent / "envs"
    if str(envs) not in sys.path:
        sys.path.insert(0, str(envs))  # the scripts import zoo_common
    spec = importlib.util.spec_from_file_location(f"envs_{name}", envs / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
