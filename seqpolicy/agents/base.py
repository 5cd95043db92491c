"""The agent protocol and the input handling every agent shares.

An agent is driven like this, in a plain Gymnasium loop::

    agent.reset()
    obs, _ = env.reset(seed=0)
    reward = None
    while True:
        action = agent.act(obs, reward)          # reward: what env.step returned last time (None at first)
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break

For vector envs, ``obs`` has shape (n, obs_dim) and ``reward`` shape (n,); each env keeps its own context,
and ``agent.reset(envs=mask_or_indices)`` clears only the envs that ended (Gymnasium's autoreset). The
reward entry of an env whose context was just cleared is ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from seqpolicy.common.spaces import ActionScaler

EnvSelector = int | Sequence[int] | np.ndarray | None


@runtime_checkable
class Agent(Protocol):
    """What the evaluation harness needs from any policy."""

    observation_space: gym.Space
    action_space: gym.Space

    def reset(self, seed: int | None = None, envs: EnvSelector = None) -> None:
        """Forget the episode context (of all envs, or only of ``envs``: an index, indices or a bool mask)."""

    def act(self, obs: np.ndarray, reward: float | np.ndarray | None = None) -> np.ndarray:
        """Return the action(s) for ``obs``, given the reward(s) of the previous step."""


class ContextAgent(ABC):
    """Base class that validates inputs and tracks per-env episode steps for batched use.

    Subclasses implement :meth:`_act_batch` (float32 obs of shape (n, obs_dim), float32 rewards of shape (n,)
    with fresh envs' entries set to 0, a bool mask of fresh envs) returning actions in [-1, 1] (or in env units
    when the action Box is unbounded), and :meth:`_start_batch` / :meth:`_clear` for their context storage.
    """

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise TypeError(f"{type(self).__name__} needs a flat Box observation space, got {observation_space}.")
        if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
            raise TypeError(f"{type(self).__name__} needs a flat Box action space, got {action_space}. "
                            "Discrete actions are not supported.")
        self.observation_space = observation_space
        self.action_space = action_space
        self.obs_dim = int(observation_space.shape[0])
        self.act_dim = int(action_space.shape[0])
        self._scaler = ActionScaler(action_space)
        self._n: int | None = None  # batch size of the running episode(s); None until the first act()
        self._batched = False
        self._steps = np.zeros(0, dtype=np.int64)  # per env: actions taken since its last reset

    # -- public protocol -------------------------------------------------------------------------
    def reset(self, seed: int | None = None, envs: EnvSelector = None) -> None:
        """Forget the context of every env (``envs=None``) or of the selected ones.

        Args:
            seed: seeds the agent's own randomness, if it has any.
            envs: an index, a sequence of indices or a bool mask of shape (n,) for vector envs.
        """
        if seed is not None:
            self._seed(seed)
        if envs is None:
            self._n = None
            self._steps = np.zeros(0, dtype=np.int64)
            return
        if self._n is None:
            return  # nothing is running yet: every env starts fresh anyway
        idx = self._select(envs)
        self._steps[idx] = 0
        self._clear(idx)

    def act(self, obs: np.ndarray, reward: float | np.ndarray | None = None) -> np.ndarray:
        """Action(s) for ``obs`` given the reward(s) returned by ``env.step`` for the previous action(s).

        Args:
            obs: shape (obs_dim,) for one env or (n, obs_dim) for a vector env.
            reward: None on the first call after ``reset()``; afterwards a float (or shape (n,) array).

        Returns:
            float32 action(s) of shape (act_dim,) or (n, act_dim), inside the env's action Box.
        """
        obs2d, batched = self._check_obs(obs)
        n = obs2d.shape[0]
        if self._n is None:
            self._n, self._batched = n, batched
            self._steps = np.zeros(n, dtype=np.int64)
            self._start_batch(n)
        elif n != self._n or batched != self._batched:
            was = f"({self._n}, {self.obs_dim})" if self._batched else f"({self.obs_dim},)"
            raise ValueError(f"obs has shape {np.shape(obs)} but this episode started with shape {was}. "
                             "Call agent.reset() before switching between single and batched use.")
        fresh = self._steps == 0
        rewards = self._check_reward(reward, fresh)
        actions = self._act_batch(obs2d, rewards, fresh)
        self._steps += 1
        actions = self._scaler.from_unit(actions)
        return actions if batched else actions[0]

    # -- hooks -----------------------------------------------------------------------------------
    @abstractmethod
    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray: ...

    def _start_batch(self, n: int) -> None:
        """Allocate context storage for ``n`` envs (called at the first act() after a full reset)."""

    def _clear(self, idx: np.ndarray) -> None:
        """Clear the context of the envs at ``idx``."""

    def _seed(self, seed: int) -> None:
        """Seed the agent's own randomness (deterministic agents ignore it)."""

    # -- validation ------------------------------------------------------------------------------
    def _check_obs(self, obs: np.ndarray) -> tuple[np.ndarray, bool]:
        arr = np.asarray(obs)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"obs must be a numeric array, got dtype {arr.dtype}. Pass the observation that "
                            "env.reset()/env.step() returned.")
        if arr.ndim == 1 and arr.shape[0] == self.obs_dim:
            batched = False
        elif arr.ndim == 2 and arr.shape[1] == self.obs_dim:
            batched = True
        else:
            raise ValueError(f"obs has shape {arr.shape}, expected ({self.obs_dim},) for one env or "
                             f"(n, {self.obs_dim}) for a vector env. Is this agent meant for another env?")
        arr = arr.astype(np.float32, copy=False).reshape(-1, self.obs_dim)
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(f"obs contains NaN or inf (first at index {tuple(int(i) for i in bad)}). "
                             "The environment produced an invalid observation; check it before acting.")
        return arr, batched

    def _check_reward(self, reward: float | np.ndarray | None, fresh: np.ndarray) -> np.ndarray:
        n = fresh.shape[0]
        if reward is None:
            if not fresh.all():
                raise ValueError("reward is missing: after the first act() of an episode, pass the reward that "
                                 "env.step() returned for the previous action, e.g. agent.act(obs, reward).")
            return np.zeros(n, dtype=np.float32)
        arr = np.asarray(reward, dtype=np.float64)
        if arr.ndim == 0 and n == 1 and not self._batched:
            arr = arr.reshape(1)
        if arr.shape != (n,):
            raise ValueError(f"reward has shape {arr.shape}, expected {'a scalar' if not self._batched else (n,)}.")
        arr = np.where(fresh, 0.0, arr)  # a fresh env's reward belongs to the previous episode: ignored
        if not np.isfinite(arr).all():
            raise ValueError(f"reward contains NaN or inf at env(s) {np.flatnonzero(~np.isfinite(arr)).tolist()}. "
                             "Pass the finite reward that env.step() returned.")
        return arr.astype(np.float32)

    def _select(self, envs: EnvSelector) -> np.ndarray:
        assert self._n is not None
        sel = np.asarray(envs)
        if sel.dtype == bool:
            if sel.shape != (self._n,):
                raise ValueError(f"envs mask has shape {sel.shape}, expected ({self._n},).")
            return np.flatnonzero(sel)
        idx = sel.reshape(-1).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(f"envs indices {idx.tolist()} out of range for {self._n} env(s).")
        return idx


class RandomAgent(ContextAgent):
    """Uniformly random actions inside the action Box: the floor every learned agent should beat."""

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box, seed: int | None = None):
        super().__init__(observation_space, action_space)
        self._rng = np.random.default_rng(seed)

    def _seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        if self._scaler.identity and not self._scaler.clip:
            raise ValueError("RandomAgent needs a bounded action Box.")
        return self._rng.uniform(-1.0, 1.0, size=(n, self.act_dim)).astype(np.float32)


class FunctionAgent(ContextAgent):
    """Wraps a plain function ``policy(obs_batch) -> actions_batch`` (env units) as an agent.

    Used for scripted policies such as PointReach's expert (``seqpolicy.toy.ScriptedPolicy``).
    """

    def __init__(self, policy, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        super().__init__(observation_space, action_space)
        self.policy = policy

    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        actions = np.asarray(self.policy(obs), dtype=np.float32).reshape(obs.shape[0], self.act_dim)
        return self._scaler.to_unit(actions)  # act() maps back to env units and clips
