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
reward entry of an env whose context was just cleared is ignored. ``agent.pause(envs=...)`` stops computing
actions for envs whose episodes are no longer wanted until they are reset (the evaluation harness pauses envs
that have played their share, so a planner spends nothing on them).

Stable-Baselines3's loop (``evaluate_policy``, ``model.predict``) passes no rewards. Every
:class:`ContextAgent` also has SB3's ``predict(observation, state, episode_start, deterministic)``; an agent that
needs rewards (``uses_rewards``: the DT's returns-to-go, the TT's context) gets them from
:class:`~seqpolicy.agents.reward_feed.RewardFeed`, a VecEnv wrapper that hands each step's rewards and dones to
the agent, and ``predict`` refuses to act on a continuing episode whose last reward never arrived::

    venv = RewardFeed(DummyVecEnv([make_env] * 4), agent)
    evaluate_policy(agent, venv, n_eval_episodes=4)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from seqpolicy.common.spaces import ActionScaler, is_flat_box
from seqpolicy.common.threads import acting_threads, intra_op_threads

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

    uses_rewards = True
    """Whether actions depend on past rewards; :meth:`predict` then refuses to act without them."""
    threads: int | None = None
    """Intra-op threads for this agent's ``act`` (None: the process default of
    :func:`seqpolicy.common.threads.set_acting_threads`, one thread unless set)."""

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        if not is_flat_box(observation_space):
            raise TypeError(f"{type(self).__name__} needs a flat Box observation space, got {observation_space}.")
        if not is_flat_box(action_space):
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
        self._paused = np.zeros(0, dtype=bool)  # per env: pause()d, acting skipped until its next reset
        # What a RewardFeed handed over since the last predict(): (rewards, dones) of one step, or a full reset.
        self._fed: tuple[np.ndarray, np.ndarray] | None = None
        self._fed_reset = False

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
            self._paused = np.zeros(0, dtype=bool)
            return
        if self._n is None:
            return  # nothing is running yet: every env starts fresh anyway
        idx = self._select(envs)
        self._steps[idx] = 0
        self._paused[idx] = False
        self._clear(idx)

    def pause(self, envs: EnvSelector) -> None:
        """Stop computing actions for the selected envs of a running batch until they are reset
        (``reset(envs=...)`` or a full ``reset()``): :meth:`act` returns the middle of the action Box for them.

        For vector loops that keep stepping envs whose episodes are no longer wanted: the evaluation harness
        pauses an env once it has played its share of episodes, so a planner (the TT's beam search) spends
        nothing on it. The other envs then share their batch with fewer rows, which may change their numbers
        in the last bits, as any change of batch does. Agents that act cheaply may ignore it.

        Args:
            envs: an index, a sequence of indices or a bool mask of shape (n,) of the running batch.
        """
        if self._n is None:
            raise RuntimeError("pause() needs a running batch: call act() first (every env starts fresh anyway).")
        self._paused[self._select(envs)] = True

    def act(self, obs: np.ndarray, reward: float | np.ndarray | None = None) -> np.ndarray:
        """Action(s) for ``obs`` given the reward(s) returned by ``env.step`` for the previous action(s).

        Args:
            obs: shape (obs_dim,) for one env or (n, obs_dim) for a vector env.
            reward: None on the first call after ``reset()`` (a reward there is refused: there was no step);
                afterwards the float ``env.step`` returned (or a shape (n,) array; the entries of envs reset
                with ``reset(envs=...)`` since are ignored).

        Returns:
            float32 action(s) of shape (act_dim,) or (n, act_dim), inside the env's action Box.
        """
        obs2d, batched = self._check_obs(obs)
        n = obs2d.shape[0]
        starting = self._n is None  # the first act() after reset(): no step has been taken, so no reward yet
        if not starting and (n != self._n or batched != self._batched):
            was = f"({self._n}, {self.obs_dim})" if self._batched else f"({self.obs_dim},)"
            raise ValueError(f"obs has shape {np.shape(obs)} but this episode started with shape {was}. "
                             "Call agent.reset() before switching between single and batched use.")
        fresh = np.ones(n, dtype=bool) if starting else self._steps == 0
        rewards = self._check_reward(reward, fresh, starting)
        if starting:
            self._n, self._batched = n, batched
            self._steps = np.zeros(n, dtype=np.int64)
            self._paused = np.zeros(n, dtype=bool)
            self._start_batch(n)
        with intra_op_threads(acting_threads(self.threads)):  # one thread by default: see common/threads.py
            actions = self._act_batch(obs2d, rewards, fresh)
        self._steps += 1
        actions = self._scaler.from_unit(actions)
        return actions if batched else actions[0]

    # -- Stable-Baselines3's protocol ----------------------------------------------------------------
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        """SB3's ``policy.predict``: the action(s) for ``observation``, one step of the agent's episode(s).

        Rewards come from :meth:`observe` (a :class:`~seqpolicy.agents.reward_feed.RewardFeed` around the
        VecEnv calls it after every step); envs that ``episode_start`` marks, or that the feed saw end, start
        a new episode. Every call advances the episodes by one step, exactly like :meth:`act`.

        Args:
            observation: (n, obs_dim) from a VecEnv, or (obs_dim,) for one env.
            state: returned unchanged (the episode context lives inside the agent, as for SB3's
                non-recurrent policies).
            episode_start: (n,) bools, True where an env starts a new episode (SB3's loops pass it).
            deterministic: accepted for SB3's signature and ignored: actions are the agent's own (a DT is
                deterministic; a TT samples as its planner settings and seed say), so they equal :meth:`act`'s.

        Returns:
            (actions, state): actions of shape (n, act_dim) or (act_dim,), inside the action Box.

        Raises:
            RuntimeError: the agent ``uses_rewards`` and the previous step's rewards never arrived (no
                RewardFeed, or predict() called twice without an env step in between).
        """
        obs2d, batched = self._check_obs(observation)
        n = obs2d.shape[0]
        fed, self._fed = self._fed, None
        fed_reset, self._fed_reset = self._fed_reset, False
        start = np.zeros(n, dtype=bool)
        if episode_start is not None:
            marks = np.asarray(episode_start, dtype=bool).reshape(-1)
            if marks.shape != (n,):
                raise ValueError(f"episode_start has shape {np.shape(episode_start)}, expected ({n},) for {n} "
                                 "observation(s).")
            start |= marks
        rewards = None
        if fed is not None:
            rewards, dones = fed
            if rewards.shape != (n,):
                raise ValueError(f"The RewardFeed handed over {rewards.shape[0]} reward(s) but predict() got {n} "
                                 "observation(s): wrap the same VecEnv the observations come from.")
            start |= dones  # a VecEnv resets an env that is done: its observation starts a new episode
        if fed_reset or start.all():
            self.reset()
        elif start.any() and self._n == n:
            self.reset(envs=start)
        if self._n is None:
            rewards = None  # every env starts a new episode: the rewards fed belong to the episodes that ended
        continuing = self._n is not None and bool((self._steps > 0).any())
        if continuing and rewards is None:
            if self.uses_rewards:
                raise RuntimeError(
                    f"{type(self).__name__}.predict() has no rewards for the previous step, and this agent acts on "
                    "them (a DT's returns-to-go fall by each reward; a TT plans from past rewards). SB3 passes no "
                    "rewards to predict(): wrap the VecEnv with seqpolicy.RewardFeed(venv, agent), which hands "
                    "each step's rewards to the agent, or drive it with agent.act(obs, reward).")
            rewards = np.zeros(n)
        reward = None if rewards is None else (rewards if batched else float(rewards[0]))
        return self.act(observation, reward), state

    def observe(self, rewards: float | np.ndarray, dones: bool | np.ndarray | None = None) -> None:
        """Hand over what the env's step returned for the last :meth:`predict`'s actions (RewardFeed calls it).

        Args:
            rewards: shape (n,) (or a scalar for one env): the env's own rewards of that step.
            dones: shape (n,): envs whose episode ended at that step (the next predict() restarts them).

        Raises:
            RuntimeError: rewards of an earlier step are still waiting for predict(); the agent's context
                would miss a step.
        """
        if self._fed is not None:
            raise RuntimeError("observe() was called twice without predict() in between: the agent did not choose "
                               "the action of one of those steps. Call predict() once per env step.")
        r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        d = np.zeros(r.shape, dtype=bool) if dones is None else np.asarray(dones, dtype=bool).reshape(-1)
        if d.shape != r.shape:
            raise ValueError(f"dones has shape {d.shape}, rewards {r.shape}: pass one of each per env.")
        self._fed = (r, d)

    def observe_reset(self) -> None:
        """Every env was reset (``VecEnv.reset()``): the next :meth:`predict` starts new episodes."""
        self._fed, self._fed_reset = None, True

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

    def _check_reward(self, reward: float | np.ndarray | None, fresh: np.ndarray, starting: bool) -> np.ndarray:
        n = fresh.shape[0]
        if reward is None:
            if not fresh.all():
                raise ValueError("reward is missing: after the first act() of an episode, pass the reward that "
                                 "env.step() returned for the previous action, e.g. agent.act(obs, reward).")
            return np.zeros(n, dtype=np.float32)
        if starting:
            raise ValueError(f"reward {_short(reward)} was passed to the first act() after reset(), where no step has "
                             "been taken yet, so there is no reward to pass: it would belong to another episode. "
                             "Pass None (or nothing) at the first act() of an episode, and then the reward "
                             "env.step() returned for the previous action.")
        arr = np.asarray(reward)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"reward must be a number (an array of numbers for a vector env), got "
                            f"{type(reward).__name__} {_short(reward)}. Pass the reward env.step() returned as it is.")
        arr = arr.astype(np.float64)
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


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RandomAgent(ContextAgent):
    """Uniformly random actions inside the action Box: the floor every learned agent should beat."""

    uses_rewards = False

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

    uses_rewards = False

    def __init__(self, policy, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        super().__init__(observation_space, action_space)
        self.policy = policy

    def _act_batch(self, obs: np.ndarray, rewards: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        actions = np.asarray(self.policy(obs), dtype=np.float32).reshape(obs.shape[0], self.act_dim)
        return self._scaler.to_unit(actions)  # act() maps back to env units and clips
