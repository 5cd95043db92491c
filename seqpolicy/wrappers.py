"""Gymnasium wrappers for offline-trained agents, in Gymnasium's own style.

Each wrapper overrides one method, updates the space it changes and records its constructor arguments
(``env.spec`` then reproduces the wrapped env). Statistics are fixed at construction: an offline agent was
trained with one mean/std, and evaluation must not drift from it.

seqpolicy's agents store their training statistics and apply them themselves, so these wrappers are for
users who drive their own models, for SB3 policies trained on wrapped envs, and for the evaluation harness
(:class:`RecordRawReward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from seqpolicy.common.spaces import is_flat_box, normalize_observations

__all__ = ["FrozenNormalizeObservation", "RescaleClipAction", "RecordRawReward"]


class FrozenNormalizeObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Normalise observations with fixed statistics: ``(obs - mean) / (std + epsilon)``, optionally clipped.

    Unlike :class:`gymnasium.wrappers.NormalizeObservation`, the statistics never update, which is what a
    policy trained offline on a dataset's statistics needs.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> env = FrozenNormalizeObservation(gym.make("Hopper-v4"), mean=np.zeros(11), std=np.ones(11))
        >>> env.observation_space.shape
        (11,)
    """

    def __init__(self, env: gym.Env, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray,
                 epsilon: float = 1e-6, clip: float | None = None):
        """
        Args:
            env: an env with a flat Box observation space.
            mean: per-dimension mean, shape (obs_dim,).
            std: per-dimension standard deviation, shape (obs_dim,), non-negative.
            epsilon: added to ``std`` (1e-6, as in the Decision Transformer's code).
            clip: if given, normalised observations are clipped to [-clip, clip].
        """
        space = env.observation_space
        if not is_flat_box(space):
            raise TypeError(f"FrozenNormalizeObservation needs a flat Box observation space, got {space}.")
        mean_arr = np.asarray(mean, dtype=np.float64).reshape(-1)
        std_arr = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean_arr.shape != space.shape or std_arr.shape != space.shape:
            raise ValueError(f"mean and std must have shape {space.shape} (the observation shape), got "
                             f"{mean_arr.shape} and {std_arr.shape}.")
        if not (np.isfinite(mean_arr).all() and np.isfinite(std_arr).all()) or (std_arr < 0).any():
            raise ValueError("mean and std must be finite and std non-negative.")
        if clip is not None and clip <= 0:
            raise ValueError(f"clip must be positive or None, got {clip}.")
        gym.utils.RecordConstructorArgs.__init__(self, mean=mean_arr.tolist(), std=std_arr.tolist(),
                                                 epsilon=epsilon, clip=clip)
        gym.ObservationWrapper.__init__(self, env)
        self.mean = mean_arr.astype(np.float32)
        self.scale = (std_arr + epsilon).astype(np.float32)  # std + epsilon, added once in float64
        self.clip = clip
        low = self._transform(space.low.astype(np.float64))
        high = self._transform(space.high.astype(np.float64))
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # inf bounds stay inf
            y = normalize_observations(x, self.mean, self.scale, epsilon=0.0, clip=self.clip)  # scale holds epsilon
        return y.astype(np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Normalise one observation."""
        return self._transform(np.asarray(observation, dtype=np.float32))


class RescaleClipAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Let the agent act in ``[low, high]`` (default [-1, 1]): actions are clipped there, then mapped
    linearly onto the env's bounded action Box.

    Not ``ClipAction(RescaleAction(env, low, high))``: Gymnasium's pair gives the same env actions on boxes such
    as [-2, 2], but maps in float32 (other bounds round otherwise), passes float64 actions on as float64, does not
    clip the mapped action into the env's Box, and reports an unbounded action space
    (tests/test_wrappers.py shows the differences).

    Example:
        >>> import gymnasium as gym
        >>> import seqpolicy  # registers seqpolicy/PointReach-v0, whose forces lie in [-2, 2]
        >>> env = RescaleClipAction(gym.make("seqpolicy/PointReach-v0"))
        >>> env.action_space.low.tolist(), env.action(np.array([1.5, -0.5])).tolist()
        ([-1.0, -1.0], [2.0, -1.0])
    """

    def __init__(self, env: gym.Env, low: float = -1.0, high: float = 1.0):
        """
        Args:
            env: an env with a bounded flat Box action space.
            low: lower bound of the agent's action range.
            high: upper bound of the agent's action range (> low).
        """
        space = env.action_space
        if not is_flat_box(space):
            raise TypeError(f"RescaleClipAction needs a flat Box action space, got {space}.")
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise ValueError(f"RescaleClipAction needs a bounded action Box, got {space}.")
        if not high > low:
            raise ValueError(f"high must be greater than low, got low={low}, high={high}.")
        gym.utils.RecordConstructorArgs.__init__(self, low=low, high=high)
        gym.ActionWrapper.__init__(self, env)
        self.low, self.high = float(low), float(high)
        self._env_low = space.low.astype(np.float64)
        self._env_high = space.high.astype(np.float64)
        self.action_space = gym.spaces.Box(self.low, self.high, shape=space.shape, dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        """Agent action in [low, high] -> env action inside the env's Box."""
        a = np.clip(np.asarray(action, dtype=np.float64), self.low, self.high)
        a = self._env_low + (a - self.low) / (self.high - self.low) * (self._env_high - self._env_low)
        return np.clip(a, self._env_low, self._env_high).astype(self.env.action_space.dtype)


class RecordRawReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Copy each step's reward into ``info["raw_reward"]`` before any outer wrapper changes the reward.

    :func:`seqpolicy.evaluate` puts this wrapper directly around the env it makes and sums
    ``info["raw_reward"]``, so scores stay in the env's own units when normalising wrappers sit on top.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["raw_reward"] = float(reward)
        return obs, reward, terminated, truncated, info
