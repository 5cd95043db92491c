"""One evaluation spread over worker processes, one acting thread each: for agents whose act() costs enough to
pay a process start (a Trajectory Transformer's planner: tens of milliseconds per env step).

Why processes and not more intra-op threads: a second thread helps a planner's small matmuls 1.4x on a quiet
2-core machine and collapses beside another job (a two-thread team waits at every operation for its
descheduled half; ``seqpolicy.common.threads``), while two single-threaded processes simply share the cores
with whatever else runs: beside a busy core they still get more CPU than one process does.

The episodes are cut into consecutive seed ranges, one per worker, each evaluated as the part of the whole run
it is (:func:`~seqpolicy.evaluation.evaluate.evaluate`'s ``agent_seed``: the agent is reset with the run's seed,
so an agent whose draws restart from its seed at each episode, as the TT's do, draws each episode as in the
one-process run; an agent with one generator for the whole batch, as the random baseline, draws otherwise), and
merged with :func:`~seqpolicy.evaluation.evaluate.merge_results`. A worker steps fewer envs together than one
process would, and a batch's size can change a network's last bits (so, over hundreds of steps, a sampled plan):
the result records ``conditions.workers`` and each part's ``n_envs``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import gymnasium

from seqpolicy.evaluation.evaluate import EvalResult, _progress_bar, evaluate, merge_results


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def split_episodes(n_episodes: int, workers: int) -> list[tuple[int, int]]:
    """(first episode, count) of each worker's consecutive range: as even as can be, the longer ranges first.

    >>> split_episodes(5, 2)
    [(0, 3), (3, 2)]
    """
    workers = max(1, min(workers, n_episodes))
    base, extra = divmod(n_episodes, workers)
    out, first = [], 0
    for w in range(workers):
        count = base + (w < extra)
        out.append((first, count))
        first += count
    return out


def evaluate_parallel(load_agent: Callable[[], Any], env_id: str, n_episodes: int, seed: int = 0,
                      n_envs: int = 1, workers: int = 2, *, threads: int = 1,
                      max_episode_steps: int | None = None, allow_env_mismatch: bool = False,
                      progress: bool | Literal["lines", "auto"] = False) -> EvalResult:
    """:func:`~seqpolicy.evaluation.evaluate.evaluate` over ``workers`` processes.

    Args:
        load_agent: makes the agent in a worker; it is sent to the worker, so it must pickle (a module-level
            function or a ``functools.partial`` of one, e.g. ``partial(seqpolicy.zoo.get_agent, "Hopper-v4",
            "tt")``).
        env_id: a registered env id.
        n_episodes, seed: as for ``evaluate``: episode ``i`` is reset with ``seed + i``.
        n_envs: envs each worker steps together (at most its share of the episodes).
        workers: processes (at most ``n_episodes``); each acts on ``threads`` intra-op threads.
        max_episode_steps, allow_env_mismatch: as for ``evaluate``.
        progress: one bar (or log lines) over all the workers' env steps, as ``evaluate`` shows.

    Returns:
        The merged :class:`~seqpolicy.evaluation.evaluate.EvalResult`: every episode in seed order, the wall time
        of the whole run, ``conditions.workers``.

    Raises:
        ValueError: bad counts; a worker's own error (an agent that cannot act on the env, ...) as it raised it.
    """
    for name, value in (("n_episodes", n_episodes), ("n_envs", n_envs), ("workers", workers),
                        ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    parts = split_episodes(n_episodes, workers)
    # One env in the whole run: the agent is reseeded per episode (seed + i), which a part does by itself.
    agent_seed = seed if n_envs > 1 else None
    limit = max_episode_steps or getattr(gymnasium.spec(env_id), "max_episode_steps", None)
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    inbox = ctx.Queue()
    procs = [ctx.Process(target=_worker, daemon=True, name=f"seqpolicy-eval-{i}",
                         args=(inbox, i, load_agent, env_id, seed + first, count, n_envs, agent_seed, threads,
                               max_episode_steps, allow_env_mismatch))
             for i, (first, count) in enumerate(parts)]
    results: dict[int, EvalResult] = {}
    with _progress_bar(n_episodes, limit, progress) as bar:
        try:
            for proc in procs:
                proc.start()
            while len(results) < len(parts):
                try:
                    kind, index, payload = inbox.get(timeout=1.0)
                except queue_module.Empty:
                    dead = [p for i, p in enumerate(procs) if i not in results and not p.is_alive()]
                    if dead and inbox.empty():
                        raise RuntimeError(f"evaluation worker {dead[0].name} stopped without a result (exit code "
                                           f"{dead[0].exitcode}; out of memory?).") from None
                    continue
                if kind == "error":
                    raise payload
                if kind == "result":
                    results[index] = payload
                elif bar is not None:
                    getattr(bar, kind)(payload)
        finally:
            for proc in procs:  # on an error or Ctrl-C the other workers are stopped, not waited for
                if proc.is_alive() and len(results) < len(parts):
                    proc.terminate()
            for proc in procs:
                proc.join(timeout=10)
    merged = merge_results([results[i] for i in range(len(parts))])
    conditions = {**merged.conditions, "workers": len(parts)}
    return replace(merged, wall_time_s=time.perf_counter() - start, conditions=conditions)


class _Relay:
    """A worker's progress, sent to the parent's bar."""

    def __init__(self, inbox: Any, index: int):
        self.inbox, self.index = inbox, index

    def steps(self, n: int) -> None:
        self.inbox.put(("steps", self.index, n))

    def episode(self, length: int) -> None:
        self.inbox.put(("episode", self.index, length))


def _worker(inbox: Any, index: int, *part: Any) -> None:
    try:
        inbox.put(("result", index, _evaluate_part(*part, progress=_Relay(inbox, index))))
    except BaseException as e:  # noqa: BLE001 - every error goes to the parent, which raises it
        try:
            inbox.put(("error", index, e))
        except Exception:  # an exception that does not pickle: its text
            inbox.put(("error", index, RuntimeError(f"{type(e).__name__}: {e}")))


def _evaluate_part(load_agent: Callable[[], Any], env_id: str, seed: int, count: int, n_envs: int,
                   agent_seed: int | None, threads: int, max_episode_steps: int | None,
                   allow_env_mismatch: bool, progress: Any) -> EvalResult:
    from seqpolicy.common.threads import set_acting_threads

    set_acting_threads(threads)
    agent = load_agent()
    return evaluate(agent, env_id, count, seed, min(n_envs, count), max_episode_steps=max_episode_steps,
                    allow_env_mismatch=allow_env_mismatch, progress=progress, agent_seed=agent_seed)
