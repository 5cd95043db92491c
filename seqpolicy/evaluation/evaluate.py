"""One evaluation loop for every agent: single env or Gymnasium vector envs, honest per-episode scores.

Rules the loop keeps (SB3's ``evaluate_policy`` is the counter-example):

- Episode ``i`` is reset with seed ``seed + i``, whichever env runs it, so results repeat and a vector run
  scores exactly the episodes a single-env run scores.
- Returns are the env's own rewards, read from :class:`~seqpolicy.wrappers.RecordRawReward` placed directly
  around the made env, beneath any wrapper the caller adds.
- With ``n_envs > 1`` episodes are dealt to envs up front (env ``j`` runs episodes ``j, j + n_envs, ...``), so
  exactly ``n_episodes`` are counted and short episodes are not over-represented, as they are when the
  first ``n_episodes`` to finish are kept.

Example:
    >>> import seqpolicy
    >>> from seqpolicy.toy import ScriptedPolicy
    >>> env = gymnasium.make("seqpolicy/PointReach-v0")
    >>> agent = seqpolicy.FunctionAgent(ScriptedPolicy(), env.observation_space, env.action_space)
    >>> result = evaluate(agent, "seqpolicy/PointReach-v0", n_episodes=4, seed=0, n_envs=2)
    >>> len(result.returns)
    4
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import gymnasium
import numpy as np

from seqpolicy.agents.base import ContextAgent
from seqpolicy.common.artifact import atomic_write_json, package_versions
from seqpolicy.common.envs import check_agent_env_id, gym_make
from seqpolicy.common.spaces import space_mismatch, space_to_json
from seqpolicy.common.threads import acting_threads, run_conditions
from seqpolicy.evaluation.scores import MIN_CI_EPISODES, bootstrap_ci, d4rl_normalized, env_name_and_version
from seqpolicy.wrappers import RecordRawReward

EnvLike = str | Callable[..., gymnasium.Env] | gymnasium.Env
Wrapper = Callable[[gymnasium.Env], gymnasium.Env]


@dataclass
class EvalResult:
    """Per-episode results and their summary; ``to_dict()`` / ``save_json()`` give the JSON form."""

    env_id: str
    """Env id including its version, e.g. ``"Hopper-v4"``."""
    env_version: int | None
    agent: str
    """A short description of the agent (its class, and its kind when it has one)."""
    seed: int
    seeds: list[int]
    """Reset seed of each episode (``seed + i``)."""
    returns: list[float]
    """Undiscounted sum of the env's raw rewards, per episode, in episode order."""
    lengths: list[int]
    mean: float
    std: float
    """Sample standard deviation (ddof=1; 0 for one episode)."""
    ci95: tuple[float, float]
    """95% percentile-bootstrap confidence interval of the mean return."""
    normalized: dict | None
    """D4RL-normalised scores (mean, ci95, per episode, reference used) for Hopper/HalfCheetah/Walker2d."""
    n_envs: int
    vectorization: str
    env_steps: int
    wall_time_s: float
    versions: dict[str, str] = field(default_factory=dict)
    dataset: str | None = None
    """The offline dataset the agent was trained on, when it says (``agent.dataset_id``)."""
    conditions: dict = field(default_factory=dict)
    """What the seeds' results also depend on: intra-op threads of acting, ``n_envs``, CPU model and matmul
    instruction kind (see :func:`seqpolicy.common.threads.run_conditions`); empty in results written before."""
    actions: list[np.ndarray] | None = field(default=None, repr=False, compare=False)
    """Per episode, the actions its env was stepped with, shape (length, *action shape): what
    :func:`~seqpolicy.evaluation.video.record_video` steps a rendering env with, so that a video shows the
    scored episode itself. Kept in memory only (not in ``to_dict``/JSON); None in results read from JSON."""

    @property
    def n_episodes(self) -> int:
        return len(self.returns)

    @property
    def normalized_score(self) -> float | None:
        """Mean D4RL-normalised score, or None for envs without reference scores."""
        return self.normalized["mean"] if self.normalized else None

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.wall_time_s if self.wall_time_s > 0 else float("inf")

    def format_ci(self, ci: Sequence[float]) -> str:
        """``"low to high"``, or ``"n/a"`` when there are too few episodes for a CI to mean anything."""
        return f"{ci[0]:.1f} to {ci[1]:.1f}" if self.n_episodes >= MIN_CI_EPISODES else "n/a"

    def summary(self) -> str:
        """One line: mean return with its CI, and the normalised score when there is one."""
        few = self.n_episodes < MIN_CI_EPISODES
        line = f"{self.env_id}: return {self.mean:.1f} +- {self.std:.1f}"
        line += "" if few else f" (95% CI {self.format_ci(self.ci95)})"
        line += f" over {self.n_episodes} episodes"
        if self.normalized:
            n = self.normalized
            line += f", D4RL-normalised {n['mean']:.1f}" + ("" if few else f" (95% CI {self.format_ci(n['ci95'])})")
        return line + (f" (no 95% CI from fewer than {MIN_CI_EPISODES} episodes)" if few else "")

    def to_dict(self) -> dict:
        doc = asdict(replace(self, actions=None))
        del doc["actions"]  # in memory only, for videos
        doc["ci95"] = list(self.ci95)
        doc["n_episodes"] = self.n_episodes
        doc["steps_per_second"] = self.steps_per_second
        return doc

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically; parent folders are created)."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def from_dict(cls, doc: dict) -> EvalResult:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``doc`` is not an evaluation result (names the fields it lacks).
        """
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in doc] if isinstance(doc, dict) else required
        if missing:
            raise ValueError(f"not an evaluation result: no {', '.join(missing)} (expected what "
                             "EvalResult.save_json writes).")
        keep = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        keep["ci95"] = tuple(keep["ci95"])
        return cls(**keep)

    @classmethod
    def load_json(cls, path: str | Path) -> EvalResult:
        """Read what :meth:`save_json` wrote (or the ``evaluation`` entry of ``seqpolicy-eval --json``'s file).

        Raises:
            ValueError: the file is not JSON, or not an evaluation result (names the file).
        """
        try:
            doc = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:  # json's errors name no file
            raise ValueError(f"{path} is not valid JSON ({e}): expected an evaluation result.") from e
        if isinstance(doc, dict) and isinstance(doc.get("evaluation"), dict):
            doc = doc["evaluation"]
        try:
            return cls.from_dict(doc)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


# -- making envs -----------------------------------------------------------------------------------------

def make_env(env: EnvLike, *, env_kwargs: dict | None = None, wrappers: Sequence[Wrapper] = (),
             max_episode_steps: int | None = None, render_mode: str | None = None,
             render_size: tuple[int, int] | None = None) -> gymnasium.Env:
    """Make one env the way :func:`evaluate` does: raw-reward recorder innermost, then ``wrappers``.

    Args:
        env: a registered env id, a function returning a new env (it may accept ``render_mode``), or an env.
        env_kwargs: keyword arguments for ``gymnasium.make`` (env ids only).
        wrappers: functions ``env -> wrapped env`` applied in order, outside the raw-reward recorder.
        max_episode_steps: cut episodes after this many steps (overrides the registered limit for ids).
        render_mode: e.g. ``"rgb_array"`` for video.
        render_size: (width, height) of rendered frames, for envs that accept ``width``/``height``.

    Raises:
        ValueError: the env id is unknown or the env cannot be made, with the reason.
    """
    if isinstance(env, gymnasium.Env):
        if render_mode is not None and env.render_mode != render_mode:
            raise ValueError(f"The env instance has render_mode={env.render_mode!r}, {render_mode!r} is needed: "
                             "pass an env id or a make-function instead of an env instance.")
        base = env
    elif isinstance(env, str):
        kwargs = dict(env_kwargs or {})
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        base = _make_by_id(env, kwargs, render_size)
    elif callable(env):
        if env_kwargs:
            raise ValueError("env_kwargs apply to env ids only; put them inside your make-function.")
        base = _make_by_function(env, render_mode)
        if max_episode_steps is not None:
            base = gymnasium.wrappers.TimeLimit(base, max_episode_steps)
    else:
        raise TypeError(f"env must be an env id, a make-function or a gymnasium.Env, got {type(env).__name__}.")
    if not _has_wrapper(base, RecordRawReward):
        hidden = _reward_wrappers(base)
        if hidden:
            warnings.warn(f"The env is already wrapped by {', '.join(hidden)}, which may change rewards: the scores "
                          "will be in the wrapped units. Pass such wrappers through wrappers=[...] instead, so "
                          "raw rewards are recorded beneath them.", stacklevel=3)
        base = RecordRawReward(base)
    for wrap in wrappers:
        base = wrap(base)
    return base


def _make_by_id(env_id: str, kwargs: dict, render_size: tuple[int, int] | None) -> gymnasium.Env:
    if render_size is not None:
        try:
            return gym_make(env_id, **kwargs, width=render_size[0], height=render_size[1])
        except TypeError:  # this env does not take a frame size: use its own
            pass
    return gym_make(env_id, **kwargs)


def _make_by_function(fn: Callable[..., gymnasium.Env], render_mode: str | None) -> gymnasium.Env:
    if render_mode is None:
        made = fn()
    else:
        try:
            made = fn(render_mode=render_mode)
        except TypeError:
            made = fn()
        if getattr(made, "render_mode", None) != render_mode:
            raise ValueError(f"The make-function returned an env with render_mode={made.render_mode!r}; video "
                             f"needs {render_mode!r}: let the function accept a render_mode keyword.")
    if not isinstance(made, gymnasium.Env):
        raise TypeError(f"The make-function returned {type(made).__name__}, not a gymnasium.Env.")
    return made


def _has_wrapper(env: gymnasium.Env, cls: type) -> bool:
    while True:
        if isinstance(env, cls):
            return True
        if not isinstance(env, gymnasium.Wrapper):
            return False
        env = env.env


def _reward_wrappers(env: gymnasium.Env) -> list[str]:
    found = []
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, (gymnasium.RewardWrapper, gymnasium.wrappers.NormalizeReward)):
            found.append(type(env).__name__)
        env = env.env
    return found


def env_label(env: gymnasium.Env, fallback: str) -> str:
    """The id (with version) of a made env, or ``fallback`` when it was not made from the registry."""
    spec = env.spec
    return spec.id if spec is not None and spec.id else fallback


def check_agent_spaces(agent: Any, observation_space: gymnasium.Space, action_space: gymnasium.Space,
                       env_id: str) -> None:
    """Raise a clear ValueError when an agent's spaces do not match the env's."""
    mismatch = space_mismatch(agent, observation_space, action_space)
    if mismatch is not None:
        what, agent_space, env_space = mismatch
        made_for = getattr(agent, "env_id", None)
        made_for = made_for if isinstance(made_for, str) and made_for else "another env (or another version)"
        raise ValueError(f"The agent's {what} space {_brief(agent_space)} does not match {env_id}'s "
                         f"{_brief(env_space)}: the agent was made for {made_for}.")


def check_agent_env(agent: Any, env: Any, env_id: str, *, spaces: bool = True,
                    allow_env_mismatch: bool = False) -> None:
    """Refuse an agent made for another env, in one clear ValueError: the check wherever an agent meets an env
    (evaluation, videos, calibration, comparisons).

    Args:
        agent: any agent; when it records an env id (``agent.env_id``), the env must have that id and version.
        env: a made env, or a vector env (its first env's id and its single spaces are checked).
        env_id: the env's name in messages.
        spaces: refuse observation/action spaces that differ from the env's (checked first: no flag lets an
            agent act on spaces it cannot read).
        allow_env_mismatch: run an agent on another env id or version on purpose (e.g. a Hopper-v4 agent on
            Hopper-v5, whose spaces are the same).
    """
    vector = hasattr(env, "single_observation_space")
    if spaces:
        check_agent_spaces(agent, env.single_observation_space if vector else env.observation_space,
                           env.single_action_space if vector else env.action_space, env_id)
    check_agent_env_id(agent, _registered_id(env), allow_env_mismatch=allow_env_mismatch)


def _registered_id(env: Any) -> str | None:
    """The registered id of a made env (or of a vector env's first env); None for an env made without one."""
    try:
        spec = env.get_attr("spec")[0] if hasattr(env, "num_envs") else env.spec
    except Exception:
        return None
    return spec.id if spec is not None and spec.id else None


def _brief(space: gymnasium.Space) -> str:
    doc = space_to_json(space) if isinstance(space, (gymnasium.spaces.Box, gymnasium.spaces.Discrete)) else None
    if doc and doc["type"] == "Box":
        lo, hi = np.min(space.low), np.max(space.high)
        return f"Box(shape={tuple(doc['shape'])}, bounds {lo:g}..{hi:g})"
    return str(space)


def describe_agent(agent: Any) -> str:
    kind = getattr(agent, "kind", None) or getattr(agent, "name", None)
    name = type(agent).__name__
    return f"{name} ({kind})" if isinstance(kind, str) else name


# -- the loop ----------------------------------------------------------------------------------------------

def evaluate(agent: Any, env: EnvLike, n_episodes: int = 10, seed: int = 0, n_envs: int = 1, *,
             vectorization: Literal["sync", "async"] = "sync", wrappers: Sequence[Wrapper] = (),
             env_kwargs: dict | None = None, max_episode_steps: int | None = None,
             check_spaces: bool = True, allow_env_mismatch: bool = False,
             progress: bool | Literal["lines", "auto"] | Any = False, agent_seed: int | None = None) -> EvalResult:
    """Run ``n_episodes`` episodes of ``agent`` and score them.

    Args:
        agent: anything with ``reset(seed=None, envs=None)`` and ``act(obs, reward)`` (see
            :mod:`seqpolicy.agents.base`); with ``n_envs > 1`` it must accept batched observations.
        env: a registered env id (``"Hopper-v4"``), a function returning a new env, or (``n_envs=1`` only)
            an env instance, which is not closed afterwards.
        n_episodes: number of episodes, >= 1; exactly this many are scored.
        seed: episode ``i`` is reset with ``seed + i``. With one env the agent is also reseeded with
            ``seed + i`` at each episode, so a stochastic agent's episode can be replayed; with several envs
            it is seeded once with ``seed``.
        n_envs: number of envs stepped together (a Gymnasium vector env when > 1).
        vectorization: ``"sync"`` (one process) or ``"async"`` (one subprocess per env).
        wrappers: functions ``env -> env`` applied outside the raw-reward recorder (e.g. normalisation).
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_episode_steps: cut episodes after this many steps.
        check_spaces: refuse an agent whose observation/action spaces differ from the env's.
        allow_env_mismatch: run an agent that records another env id or version (``agent.env_id``) on this
            env anyway; by default that is refused, since versions share spaces but not dynamics.
        progress: show a progress bar of finished episodes on stderr (tqdm); ``"lines"`` writes a plain
            line instead (finished episodes, elapsed time) at most every 60 s and at the end, for logs of
            background jobs where a bar would be one long line of carriage returns; ``"auto"`` picks the bar
            when stderr is a terminal and the lines otherwise (what the command-line tools pass). An object
            with ``steps(n)`` and ``episode(length)`` methods is called instead of a bar (how
            :func:`~seqpolicy.evaluation.parallel.evaluate_parallel` gathers its workers' progress).
        agent_seed: the part of a longer evaluation (episodes from ``seed`` on of a run that began at
            ``agent_seed``): the envs are stepped as a vector env even when there is one, and the agent is reset
            once with ``agent_seed``, as the whole run resets it, so an agent whose draws restart from its seed
            at each episode (the TT) samples each episode as it would there.

    Returns:
        An :class:`EvalResult` with per-episode returns and lengths, mean, std, bootstrap CI and the
        D4RL-normalised score when the env has reference scores.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}.")
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if vectorization not in ("sync", "async"):
        raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}.")
    if agent_seed is not None and (not isinstance(agent_seed, (int, np.integer)) or agent_seed < 0):
        raise ValueError(f"agent_seed must be a non-negative integer, got {agent_seed!r}.")
    n_episodes, n_envs, seed = int(n_episodes), int(min(n_envs, n_episodes)), int(seed)
    fallback = env if isinstance(env, str) else getattr(env, "__name__", type(env).__name__)

    def make() -> gymnasium.Env:
        return make_env(env, env_kwargs=env_kwargs, wrappers=wrappers, max_episode_steps=max_episode_steps)

    start = time.perf_counter()
    actions: list = [None] * n_episodes  # filled per episode, for record_video
    if n_envs == 1 and agent_seed is None:
        one = make()
        env_id = env_label(one, fallback)
        try:
            check_agent_env(agent, one, env_id, spaces=check_spaces, allow_env_mismatch=allow_env_mismatch)
            with _progress_bar(n_episodes, _time_limit(one), progress) as bar:
                returns, lengths = _run_single(agent, one, n_episodes, seed, bar, actions)
        finally:
            if not isinstance(env, gymnasium.Env):
                one.close()
    else:
        if isinstance(env, gymnasium.Env):
            raise ValueError("n_envs > 1 needs an env id or a make-function, not an env instance.")
        venv = _make_vector(make, n_envs, vectorization)
        try:
            env_id = _vector_env_id(venv, fallback)
            check_agent_env(agent, venv, env_id, spaces=check_spaces, allow_env_mismatch=allow_env_mismatch)
            with _progress_bar(n_episodes, _time_limit(venv), progress) as bar:
                returns, lengths = _run_vector(agent, venv, n_episodes, seed, bar, actions, agent_seed)
        finally:
            venv.close()
    wall = time.perf_counter() - start
    vectorized = n_envs > 1 or agent_seed is not None
    return _summarise(agent, env_id, seed, returns, lengths, n_envs, vectorization if vectorized else "none",
                      wall, actions)


def run_episode(agent: Any, env: gymnasium.Env, seed: int,
                on_step: Callable[[int, float], None] | None = None, *,
                actions: list | None = None) -> tuple[float, int]:
    """Play one episode reset with ``seed`` (agent reseeded too); return its raw return and length.

    ``on_step(steps, return_so_far)`` is called after the reset and after every step (e.g. to render).
    ``actions``, when given, gets a copy of each action the env is stepped with.
    """
    agent.reset(seed=seed)

    def act(obs: Any, reward: float | None) -> Any:
        action = agent.act(obs, reward)
        if actions is not None:
            actions.append(np.array(action, copy=True))  # a copy: agents may reuse their output array
        return action

    return _play(env, seed, act, on_step)


def replay_episode(env: gymnasium.Env, seed: int, actions: Sequence[Any],
                   on_step: Callable[[int, float], None] | None = None) -> tuple[float, int]:
    """Step ``env``, reset with ``seed``, with recorded ``actions`` (no agent); return its raw return and length.

    With the actions an evaluation recorded (:attr:`EvalResult.actions`) this is the scored episode itself, step
    for step, whatever the agent: the env is deterministic given its seed and actions, while an agent asked again
    may act otherwise (sampling, or numbers that depend on the batch it was evaluated in). It stops where the
    episode ends or the actions do; ``on_step`` is called as in :func:`run_episode`.
    """
    remaining = iter(actions)
    return _play(env, seed, lambda obs, reward: next(remaining, None), on_step)


def _play(env: gymnasium.Env, seed: int, next_action: Callable[[Any, float | None], Any],
          on_step: Callable[[int, float], None] | None) -> tuple[float, int]:
    """The episode loop of :func:`run_episode` and :func:`replay_episode`: ``next_action(obs, last_reward)``
    gives each action (None: stop here); returns the raw return and the length."""
    obs, _ = env.reset(seed=seed)
    reward, total, steps = None, 0.0, 0
    if on_step is not None:
        on_step(steps, total)
    while (action := next_action(obs, reward)) is not None:
        obs, reward, terminated, truncated, info = env.step(action)
        total += info.get("raw_reward", reward)
        steps += 1
        if on_step is not None:
            on_step(steps, total)
        if terminated or truncated:
            break
    return float(total), steps


def _run_single(agent: Any, env: gymnasium.Env, n_episodes: int, seed: int, bar: _Progress | None = None,
                actions: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    on_step = None if bar is None else lambda steps, _: bar.steps(1) if steps else None
    for i in range(n_episodes):
        taken: list | None = [] if actions is not None else None
        returns[i], lengths[i] = run_episode(agent, env, seed + i, on_step, actions=taken)
        if actions is not None:
            actions[i] = np.stack(taken)
        if bar is not None:
            bar.episode(int(lengths[i]))
    return returns, lengths


class _Progress:
    """Progress of an evaluation in env steps, with an ETA: a tqdm bar, or plain lines for logs.

    The total is ``n_episodes x max_steps`` (the env's time limit); an episode that ends early counts its
    remaining steps as done, so the ETA is an upper bound that tightens as episodes end. Without a known time
    limit the bar counts episodes.
    """

    def __init__(self, n_episodes: int, max_steps: int | None, lines: bool, every: float = 60.0):
        self.n_episodes, self.max_steps, self.lines, self.every = n_episodes, max_steps, lines, every
        self.total = n_episodes * max_steps if max_steps else n_episodes
        self.done = self.episodes = self.env_steps = 0
        self.start = self.last = time.perf_counter()
        self.bar = None
        if not lines:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="step" if max_steps else "episode", desc="evaluating",
                            leave=False, unit_scale=bool(max_steps), smoothing=0.1)

    def steps(self, n: int) -> None:
        """``n`` env steps were taken."""
        self.env_steps += n
        if self.max_steps:
            self._advance(n)

    def episode(self, length: int) -> None:
        """An episode of ``length`` steps ended."""
        self.episodes += 1
        self._advance(max(self.max_steps - length, 0) if self.max_steps else 1)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.episodes}/{self.n_episodes} episodes", refresh=False)

    def _advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every or self.episodes == self.n_episodes:
            self.last = now
            elapsed = now - self.start
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            print(f"evaluating: {self.episodes}/{self.n_episodes} episodes, {self.env_steps} env steps, "
                  f"{elapsed:.0f} s, at most {eta:.0f} s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _progress_bar(n_episodes: int, max_steps: int | None, enabled: bool | str | Any):
    if hasattr(enabled, "steps") and hasattr(enabled, "episode"):  # a caller's own progress sink
        yield enabled
        return
    if enabled == "auto":
        enabled = True if sys.stderr.isatty() else "lines"
    if not enabled:
        yield None
        return
    bar = _Progress(n_episodes, max_steps, lines=enabled == "lines")
    try:
        yield bar
    finally:
        bar.close()


def _make_vector(make: Callable[[], gymnasium.Env], n_envs: int, vectorization: str):
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

    try:
        from gymnasium.vector import AutoresetMode
    except ImportError as e:  # Gymnasium 1.0 cannot reset single envs of a vector env with a seed
        raise RuntimeError(f"Vector evaluation needs gymnasium>=1.1 (found {gymnasium.__version__}): "
                           "pip install -U 'gymnasium>=1.1', or use n_envs=1.") from e
    # Gymnasium 1.x's default NEXT_STEP autoreset resets a finished env during the *next* step() (ignoring
    # the action, returning reward 0) and without a seed. We disable autoreset and reset finished envs
    # ourselves with their next episode's seed, so every episode starts exactly as in a single-env run.
    cls = SyncVectorEnv if vectorization == "sync" else AsyncVectorEnv
    return cls([make] * n_envs, autoreset_mode=AutoresetMode.DISABLED)


def _time_limit(env) -> int | None:
    """The env's (or a vector env's first env's) registered step limit, if any."""
    try:
        spec = env.spec if not hasattr(env, "num_envs") else env.get_attr("spec")[0]
    except Exception:
        return None
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else None


def _vector_env_id(venv, fallback: str) -> str:
    try:
        specs = venv.get_attr("spec")
        return specs[0].id if specs and specs[0] is not None else fallback
    except Exception:
        return fallback


def _run_vector(agent: Any, venv, n_episodes: int, seed: int, bar: _Progress | None = None,
                episode_actions: list | None = None, agent_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    n = venv.num_envs
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes, dtype=np.int64)
    # Episodes are dealt up front: env j runs episodes j, j + n, j + 2n, ... (no bias to short episodes).
    episode = np.arange(n)                    # (n,) episode index each env is running; -1 when idle
    running_return = np.zeros(n)
    running_length = np.zeros(n, dtype=np.int64)
    running_actions: list[list] = [[] for _ in range(n)]  # (n,) the actions of each env's episode so far
    n_done = 0
    agent.reset(seed=seed if agent_seed is None else agent_seed)
    obs, _ = venv.reset(seed=[seed + j for j in range(n)])
    rewards = None
    while n_done < n_episodes:
        actions = agent.act(obs, rewards)
        if episode_actions is not None:
            batch = np.array(actions, copy=True)  # (n, *action shape): env j is stepped with row j
            for j in np.flatnonzero(episode >= 0):
                running_actions[j].append(batch[j])
        obs, rewards, terminated, truncated, info = venv.step(actions)
        if bar is not None:
            bar.steps(int(np.count_nonzero(episode >= 0)))
        raw = _raw_rewards(info, rewards)
        running_return += raw
        running_length += 1
        ended = np.logical_or(terminated, truncated)
        if not ended.any():
            continue
        seeds: list[int | None] = [None] * n
        for j in np.flatnonzero(ended):
            if episode[j] >= 0:
                returns[episode[j]], lengths[episode[j]] = running_return[j], running_length[j]
                if episode_actions is not None:
                    episode_actions[episode[j]] = np.stack(running_actions[j])
                n_done += 1
                if bar is not None:
                    bar.episode(int(running_length[j]))
                nxt = episode[j] + n
                episode[j] = nxt if nxt < n_episodes else -1
            if episode[j] >= 0:
                seeds[j] = seed + int(episode[j])
            # an idle env is still reset (unseeded) because a vector env steps all envs; its results are ignored
        running_return[ended] = 0.0
        running_length[ended] = 0
        for j in np.flatnonzero(ended):
            running_actions[j] = []
        if n_done == n_episodes:
            break
        obs, _ = venv.reset(seed=seeds, options={"reset_mask": ended})
        agent.reset(envs=ended)  # the agent ignores these envs' entries of `rewards` at its next act()
        idle = ended & (episode < 0)
        if idle.any() and isinstance(agent, ContextAgent):
            agent.pause(envs=idle)  # an idle env is stepped with the Box's middle; a planner spends nothing on it
    return returns, lengths


def _raw_rewards(info: dict, rewards: np.ndarray) -> np.ndarray:
    raw = info.get("raw_reward")
    if raw is None:
        return np.asarray(rewards, dtype=np.float64)
    present = info.get("_raw_reward")
    raw = np.asarray(raw, dtype=np.float64)
    return raw if present is None else np.where(present, raw, rewards)


def _summarise(agent: Any, env_id: str, seed: int, returns: np.ndarray, lengths: np.ndarray, n_envs: int,
               vectorization: str, wall: float, actions: list | None = None) -> EvalResult:
    threads = acting_threads(agent.threads) if isinstance(agent, ContextAgent) else None
    conditions = run_conditions(threads, n_envs)
    runtime = getattr(agent, "runtime", None)
    if runtime is not None:  # what computed the network, when not torch (its rounding is part of the result)
        conditions["runtime"] = getattr(runtime, "name", type(runtime).__name__)
    return _result(env_id, describe_agent(agent), getattr(agent, "dataset_id", None), seed, returns, lengths,
                   n_envs, vectorization, wall, package_versions(), conditions, actions=actions)


def _result(env_id: str, agent: str, dataset: str | None, seed: int, returns: Sequence[float],
            lengths: Sequence[int], n_envs: int, vectorization: str, wall: float, versions: dict,
            conditions: dict | None = None, *, actions: list | None = None) -> EvalResult:
    returns = np.asarray(returns, dtype=np.float64)
    ci = bootstrap_ci(returns, seed=seed)
    norm = d4rl_normalized(env_id, returns, ci)
    return EvalResult(
        env_id=env_id, env_version=env_name_and_version(env_id)[1], agent=agent, seed=seed,
        seeds=[seed + i for i in range(len(returns))], returns=[float(r) for r in returns],
        lengths=[int(n) for n in lengths], mean=float(np.mean(returns)),
        std=float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0, ci95=ci,
        normalized=norm.to_dict() if norm else None, n_envs=n_envs, vectorization=vectorization,
        env_steps=int(np.sum(lengths)), wall_time_s=wall, versions=versions, dataset=dataset,
        conditions=dict(conditions or {}), actions=actions,
    )


def merge_results(parts: Sequence[EvalResult]) -> EvalResult:
    """One result from evaluations of consecutive seed ranges of one agent (e.g. run in parallel processes).

    The merged result is what one :func:`evaluate` over all the seeds reports, statistics included;
    ``wall_time_s`` is the parts' total and ``n_envs`` the largest part's.

    Raises:
        ValueError: no parts, different envs or agents, or seeds that do not follow on.
    """
    if not parts:
        raise ValueError("merge_results needs at least one result.")
    first = parts[0]
    for prev, part in itertools.pairwise(parts):
        if (part.env_id, part.agent, part.dataset) != (first.env_id, first.agent, first.dataset):
            raise ValueError(f"Cannot merge results of different envs or agents: {first.env_id} / {first.agent} "
                             f"and {part.env_id} / {part.agent}.")
        if part.seed != prev.seeds[-1] + 1:
            raise ValueError(f"Seeds must follow on: a part ends at seed {prev.seeds[-1]}, the next starts at "
                             f"{part.seed}.")
    return _result(first.env_id, first.agent, first.dataset, first.seed, [r for p in parts for r in p.returns],
                   [n for p in parts for n in p.lengths], max(p.n_envs for p in parts), first.vectorization,
                   sum(p.wall_time_s for p in parts), first.versions, _shared_conditions(parts),
                   actions=[a for p in parts for a in p.actions] if all(p.actions is not None for p in parts) else None)


def _shared_conditions(parts: Sequence[EvalResult]) -> dict:
    """The conditions every part ran under; one that differs between parts is listed with each part's value."""
    keys = dict.fromkeys(k for p in parts for k in p.conditions)
    out = {}
    for k in keys:
        values = [p.conditions.get(k) for p in parts]
        out[k] = values[0] if all(v == values[0] for v in values) else values
    return out

