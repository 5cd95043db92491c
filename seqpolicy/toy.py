"""PointReach: a tiny continuous-control task for learning tests and the quickstart.

A point mass in the plane is pushed by a 2-D force toward a goal drawn at reset. It steps in microseconds,
so a Decision Transformer learns it on a CPU in about a minute, yet a policy has to use both the goal and the
velocity to score well. Registered as ``seqpolicy/PointReach-v0`` (50 steps per episode).

- Observation (6,): position x, y; velocity vx, vy; goal gx, gy.
- Action (2,): force in [-2, 2] per axis (deliberately not [-1, 1], so agents' action rescaling is exercised).
- Reward: ``max(0, 1 - |position - goal|)`` per step, so an episode return lies in [0, 50].
- Termination: leaving the arena (``max(|x|, |y|) > 1.5``); truncation after 50 steps (TimeLimit).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

TOY_DATASET_ID = "pointreach-mixed"  # built-in dataset: generated on demand by make_toy_dataset()
ARENA = 1.5
FORCE = 2.0


class PointReachEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None):
        high = np.array([ARENA, ARENA, 5.0, 5.0, 1.0, 1.0], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-FORCE, FORCE, shape=(2,), dtype=np.float32)
        self.render_mode = render_mode
        self._pos = np.zeros(2)
        self._vel = np.zeros(2)
        self._goal = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._pos, self._vel, self._goal]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1.0, 1.0, size=2)
        self._vel = np.zeros(2)
        self._goal = self.np_random.uniform(-1.0, 1.0, size=2)
        return self._obs(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -FORCE, FORCE)
        self._vel = 0.85 * self._vel + 0.1 * a
        self._pos = self._pos + 0.1 * self._vel
        dist = float(np.linalg.norm(self._pos - self._goal))
        terminated = bool(np.max(np.abs(self._pos)) > ARENA)
        reward = 0.0 if terminated else max(0.0, 1.0 - dist)
        if terminated:  # keep the observation inside the declared space
            self._pos = np.clip(self._pos, -ARENA, ARENA)
        self._vel = np.clip(self._vel, -5.0, 5.0)
        return self._obs(), reward, terminated, False, {"distance": dist}

    def render(self):
        """A 96x96 RGB picture: goal in green, point in white."""
        img = np.zeros((96, 96, 3), dtype=np.uint8)
        img[...] = (30, 30, 40)

        def px(p: np.ndarray) -> tuple[int, int]:
            c = np.clip(((p / ARENA) + 1) * 47.5, 0, 95).astype(int)
            return int(95 - c[1]), int(c[0])

        for p, colour in ((self._goal, (40, 200, 60)), (self._pos, (240, 240, 240))):
            r, c = px(p)
            img[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = colour
        return img


def expert_action(obs: np.ndarray) -> np.ndarray:
    """The scripted expert: a PD controller toward the goal, saturated at the force limit."""
    obs = np.asarray(obs, dtype=np.float64)
    pos, vel, goal = obs[..., 0:2], obs[..., 2:4], obs[..., 4:6]
    return np.clip(6.0 * (goal - pos) - 3.0 * vel, -FORCE, FORCE).astype(np.float32)


class ScriptedPolicy:
    """The expert, optionally with Gaussian action noise and/or a share of uniformly random actions.

    ``noise=0, random_prob=0`` is the expert; the noisy variant (e.g. ``noise=1.5``) and random actions make
    mixed-quality data. Works on one observation or a batch.
    """

    def __init__(self, noise: float = 0.0, random_prob: float = 0.0, seed: int | None = None):
        if noise < 0 or not 0 <= random_prob <= 1:
            raise ValueError(f"noise must be >= 0 and random_prob in [0, 1], got {noise}, {random_prob}.")
        self.noise, self.random_prob = noise, random_prob
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = expert_action(obs)
        if self.noise:
            a = a + self.rng.normal(0.0, self.noise, size=a.shape)
        if self.random_prob:
            rand = self.rng.uniform(-FORCE, FORCE, size=a.shape)
            pick = self.rng.random(a.shape[:-1] + (1,)) < self.random_prob
            a = np.where(pick, rand, a)
        return np.clip(a, -FORCE, FORCE).astype(np.float32)


def make_toy_dataset(n_episodes: int = 300, seed: int = 0,
                     mix: tuple[float, float, float] = (0.2, 0.5, 0.3)):
    """Mixed-quality PointReach data: shares ``mix`` of expert, noisy-expert and random episodes.

    Returns:
        :class:`seqpolicy.data.trajectories.Trajectories` with env id ``seqpolicy/PointReach-v0``.
    """
    from seqpolicy.data.trajectories import Episode, Trajectories

    env = gym.make("seqpolicy/PointReach-v0")
    rng = np.random.default_rng(seed)
    policies = [ScriptedPolicy(seed=seed + 1), ScriptedPolicy(noise=1.5, seed=seed + 2),
                ScriptedPolicy(random_prob=1.0, seed=seed + 3)]
    kinds = rng.choice(3, size=n_episodes, p=np.asarray(mix) / np.sum(mix))
    episodes = []
    for i, kind in enumerate(kinds):
        obs, _ = env.reset(seed=seed * 100_003 + i)
        o, a, r = [], [], []
        while True:
            act = policies[kind](obs)
            o.append(obs)
            a.append(act)
            obs, rew, term, trunc, _ = env.step(act)
            r.append(rew)
            if term or trunc:
                break
        episodes.append(Episode(np.array(o), np.array(a), np.array(r, dtype=np.float32), term, trunc))
    env.close()
    return Trajectories(episodes, env_id="seqpolicy/PointReach-v0", dataset_id=f"pointreach-mixed-seed{seed}",
                        observation_space=env.observation_space, action_space=env.action_space,
                        metadata={"policy_mix": {"expert": mix[0], "noisy": mix[1], "random": mix[2]},
                                  "seed": seed})



def resolve_dataset(source: str | os.PathLike, env_id: str | None = None) -> Any:
    """A dataset id/path as the trainers and reports accept it: :data:`TOY_DATASET_ID` (this env's mixed data,
    made on demand), or any source that ``seqpolicy.data.sources.load_trajectories`` reads (Minari id, D4RL HDF5,
    seqpolicy .npz)."""
    if str(source) == TOY_DATASET_ID:
        return make_toy_dataset()
    from seqpolicy.data.sources import load_trajectories

    return load_trajectories(source, env_id=env_id)

def expert_returns(n_episodes: int = 20, seed: int = 0) -> np.ndarray:
    """Returns of the scripted expert on episodes seeded ``seed + i`` (the reference for learning tests)."""
    env = gym.make("seqpolicy/PointReach-v0")
    out = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(expert_action(obs))
            total += r
            done = term or trunc
        out.append(total)
    env.close()
    return np.asarray(out)
