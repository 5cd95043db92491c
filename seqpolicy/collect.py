"""Collect offline datasets by rolling out a policy in a Gymnasium env.

This module sits above both ``seqpolicy.data`` and ``seqpolicy.agents`` (it drives agents to make data),
so neither of those layers imports it.

A policy is any seqpolicy agent, or one of these names: ``random``, ``pointreach-expert``,
``pointreach-noisy`` (PointReach's scripted policies), the path of an SB3 ``.zip``, or the path of a
seqpolicy agent folder. Optional Gaussian action noise is added in units of the action range.

Example:
    >>> from seqpolicy.collect import collect
    >>> data = collect("seqpolicy/PointReach-v0", "pointreach-expert", n_episodes=5, seed=0, progress=False)
    >>> len(data)
    5
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from seqpolicy.agents.base import Agent, FunctionAgent, RandomAgent
from seqpolicy.common.artifact import file_sha256
from seqpolicy.common.envs import check_agent_env_id, gym_make
from seqpolicy.data.trajectories import Episode, Trajectories

POLICY_NAMES = ("random", "pointreach-expert", "pointreach-noisy")


def make_policy(policy: str | os.PathLike | Agent, env: gym.Env, seed: int = 0,
                trust_zip: bool = False) -> tuple[Agent, dict[str, Any]]:
    """Turn a policy name, path or agent into an :class:`Agent`, plus a JSON description of it.

    ``trust_zip`` silences the warning that SB3 zips are unpickled (see :class:`seqpolicy.agents.sb3.SB3Agent`).

    Raises:
        ValueError: an unknown name, or a path that is neither an SB3 zip nor an agent folder.
    """
    if not isinstance(policy, str | os.PathLike):
        return policy, {"kind": "agent", "name": type(policy).__name__}
    name = str(policy)
    if name == "random":
        return RandomAgent(env.observation_space, env.action_space, seed=seed), {"kind": "random"}
    if name in ("pointreach-expert", "pointreach-noisy"):
        from seqpolicy.toy import ScriptedPolicy

        noise = 1.5 if name.endswith("noisy") else 0.0
        fn = ScriptedPolicy(noise=noise, seed=seed)
        return FunctionAgent(fn, env.observation_space, env.action_space), {"kind": "scripted", "name": name,
                                                                            "noise": noise}
    path = Path(name)
    if path.is_file() and path.suffix == ".zip":
        from seqpolicy.agents.sb3 import SB3Agent, make_sb3_env_check

        agent = SB3Agent.load(path, trusted=trust_zip)
        make_sb3_env_check(agent, env)
        return agent, {"kind": "sb3", "algo": agent.name, "path": str(path), "sha256": file_sha256(path),
                       "deterministic": agent.deterministic}
    if path.is_dir() and (path / "agent.json").is_file():
        from seqpolicy.agents.loading import agent_kind, load_agent

        return load_agent(path), {"kind": agent_kind(path), "path": str(path)}
    raise ValueError(f"Unknown policy {name!r}: pass one of {', '.join(POLICY_NAMES)}, the path of an SB3 .zip, "
                     "or a seqpolicy agent folder (with agent.json).")


def collect(env_id: str, policy: str | os.PathLike | Agent, n_steps: int | None = None,
            n_episodes: int | None = None, seed: int = 0, action_noise: float = 0.0,
            progress: bool = True, trust_zip: bool = False, allow_env_mismatch: bool = False) -> Trajectories:
    """Roll out ``policy`` in ``env_id`` for ``n_steps`` transitions or ``n_episodes`` episodes.

    Episode ``i`` is reset with seed ``seed + i``; the noise generator and the agent are seeded with ``seed``.
    With ``n_steps``, the last episode is cut at the budget and kept as truncated (like D4RL's files).

    Args:
        env_id: Gymnasium id.
        policy: see the module docstring.
        n_steps, n_episodes: exactly one of them.
        seed: base seed.
        action_noise: std of Gaussian noise added to each action, as a fraction of half the action range
            (0.1 on Hopper's [-1, 1] Box is N(0, 0.1)); the noisy action is clipped to the Box and is what the
            dataset records.
        progress: show a tqdm bar.
        trust_zip: load an SB3 zip without the unpickling warning (only for zips you made or trust).
        allow_env_mismatch: let an agent made for another env id or version act (refused by default, as in
            :func:`seqpolicy.evaluate`).

    Returns:
        :class:`Trajectories` with every episode's final observation, and ``metadata`` describing the run
        (policy, seeds, env id, return statistics of the episodes that ended in the env, wall time).
    """
    if (n_steps is None) == (n_episodes is None):
        raise ValueError("Pass exactly one of n_steps and n_episodes.")
    if (n_steps is not None and n_steps < 1) or (n_episodes is not None and n_episodes < 1):
        raise ValueError(f"n_steps/n_episodes must be >= 1, got {n_steps}/{n_episodes}.")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}.")
    env = gym_make(env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise TypeError(f"{env_id} has a {env.action_space} action space; collect supports Box actions only.")
    agent, policy_doc = make_policy(policy, env, seed=seed, trust_zip=trust_zip)
    check_agent_env_id(agent, env.spec.id if env.spec else None, allow_env_mismatch=allow_env_mismatch)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    half_range = np.where(np.isfinite(high - low), (high - low) / 2.0, 1.0)

    from tqdm.auto import tqdm

    bar = tqdm(total=n_steps or n_episodes, unit="step" if n_steps else "episode", desc=f"collect {env_id}",
               disable=not progress, mininterval=2)
    t0 = time.monotonic()
    episodes, seeds, ended = [], [], []
    total = 0
    agent.reset(seed=seed)
    while (n_steps is None or total < n_steps) and (n_episodes is None or len(episodes) < n_episodes):
        ep_seed = seed + len(episodes)
        obs, _ = env.reset(seed=ep_seed)
        agent.reset()
        o, a, r = [], [], []
        reward, terminated, truncated = None, False, False
        while not (terminated or truncated):
            action = np.asarray(agent.act(obs, reward), dtype=np.float32)
            if action_noise:
                action = np.clip(action + rng.normal(0.0, action_noise, action.shape) * half_range, low, high)
                action = action.astype(np.float32)
            o.append(obs)
            a.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            r.append(reward)
            total += 1
            if n_steps:
                bar.update(1)
                if total >= n_steps:
                    break
        finished = terminated or truncated
        episodes.append(Episode(np.array(o), np.array(a), np.array(r, dtype=np.float32),
                                terminated=terminated, truncated=not terminated, final_observation=obs))
        seeds.append(ep_seed)
        ended.append(finished)
        if n_episodes:
            bar.update(1)
    bar.close()
    env.close()
    wall = time.monotonic() - t0
    rets = np.array([ep.episode_return for ep, done in zip(episodes, ended, strict=True) if done])
    meta = {
        "env_id": env_id, "policy": policy_doc, "seed": seed, "episode_seeds": f"{seed} + episode index",
        "action_noise": action_noise, "n_steps": total, "n_episodes": len(episodes),
        "n_finished_episodes": int(len(rets)), "wall_s": round(wall, 1),
        "returns_of_finished_episodes": _return_stats(rets),
    }
    data = Trajectories(episodes, env_id=env_id, observation_space=env.observation_space,
                        action_space=env.action_space, metadata=meta)
    data.metadata["_seeds"] = seeds  # per-episode reset seeds, popped by write_collected
    return data


def _return_stats(rets: np.ndarray) -> dict[str, float | int | None]:
    if len(rets) == 0:
        return {"n": 0, "min": None, "mean": None, "std": None, "max": None}
    return {"n": int(len(rets)), "min": float(rets.min()), "mean": float(rets.mean()), "std": float(rets.std()),
            "max": float(rets.max())}


def write_collected(data: Trajectories, dataset_id: str, description: str | None = None,
                    extra: dict[str, Any] | None = None, overwrite: bool = False,
                    ref_scores: tuple[float, float] | None = None):
    """Write the output of :func:`collect` as a local Minari dataset (metadata under ``seqpolicy``)."""
    from seqpolicy.data.minari_io import write_minari

    meta = dict(data.metadata)
    seeds = meta.pop("_seeds", None)
    meta.update(extra or {})
    policy = meta.get("policy", {})
    return write_minari(data, dataset_id, env_id=data.env_id, metadata=meta, description=description,
                        algorithm_name=str(policy.get("algo") or policy.get("kind") or "unknown"), seeds=seeds,
                        ref_min_score=ref_scores[0] if ref_scores else None,
                        ref_max_score=ref_scores[1] if ref_scores else None, overwrite=overwrite)

