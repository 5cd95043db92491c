"""Target-return calibration for return-conditioned agents (the Decision Transformer).

A DT acts on the return it is asked for, and asking for more than the data supports can hurt as much as
asking for too little. ``calibrate_target`` evaluates the agent at several targets on the same seeds, and the
best one can be stored in the agent's artifact so every later user gets it.

The seeds are held out: from :data:`CALIBRATION_SEED` up by default, away from the episodes ``evaluate`` and
``seqpolicy-eval``/``seqpolicy-compare`` score by default (seeds 0 up; the zoo's 100-episode evaluations use
0-99), so the chosen target is not tuned on the episodes it is then scored on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqpolicy.evaluation.evaluate import EnvLike, EvalResult, evaluate
from seqpolicy.evaluation.figures import new_figure, save_png
from seqpolicy.evaluation.scores import CI_NOTE, MIN_CI_EPISODES

CALIBRATION_SEED = 1000
"""First reset seed of a calibration by default: held out from the evaluations' default seeds 0, 1, ..."""


@dataclass
class Calibration:
    """Achieved return per target (same episodes and seeds for every target)."""

    env_id: str
    targets: list[float]
    results: list[EvalResult]

    @property
    def means(self) -> list[float]:
        return [r.mean for r in self.results]

    @property
    def best_target(self) -> float:
        """The target with the highest mean return (the smallest such target on ties)."""
        return self.targets[int(np.argmax(self.means))]

    def to_dict(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "best_target": self.best_target,
                "episodes": self.results[0].n_episodes, "seed": self.results[0].seed,
                "points": [{"target": t, "mean": r.mean, "std": r.std, "ci95": list(r.ci95)}
                           for t, r in zip(self.targets, self.results, strict=True)]}

    def markdown(self) -> str:
        rows = ["| target return | achieved mean | 95% CI |", "|---|---|---|"]
        for t, r in zip(self.targets, self.results, strict=True):
            mark = " (best)" if t == self.best_target else ""
            rows.append(f"| {t:g}{mark} | {r.mean:.1f} | {r.format_ci(r.ci95)} |")
        if self.results[0].n_episodes < MIN_CI_EPISODES:
            rows.append(f"\n{CI_NOTE}")
        return "\n".join(rows)

    def plot(self, path: str | os.PathLike) -> Path:
        """Achieved against target return, with 95% CIs and the line achieved = target."""
        t = np.asarray(self.targets)
        m = np.asarray(self.means)
        lo = m - np.asarray([r.ci95[0] for r in self.results])
        hi = np.asarray([r.ci95[1] for r in self.results]) - m
        fig, ax = new_figure("calibration plot", (5.0, 3.8))
        ax.errorbar(t, m, yerr=[lo, hi], marker="o", capsize=4, label="achieved (mean, 95% CI)")
        ax.plot(t, t, linestyle="--", color="grey", linewidth=0.8, label="achieved = target")
        ax.axvline(self.best_target, color="#c44e52", linewidth=0.8, label=f"best target {self.best_target:g}")
        ax.set_xlabel("target return")
        ax.set_ylabel("episode return")
        ax.set_title(f"{self.env_id}: {self.results[0].n_episodes} episodes per target, seeds from "
                     f"{self.results[0].seed}", fontsize=9)
        ax.legend(fontsize=8)
        return save_png(fig, path)


def default_targets(agent: Any, n: int = 6) -> list[float]:
    """From the training data's mean episode return to 1.2x its best, or around the agent's current target."""
    stats = getattr(agent, "info", {}).get("dataset_stats") or {}
    if "return_mean" in stats and "return_max" in stats:
        low, high = float(stats["return_mean"]), 1.2 * float(stats["return_max"])
    else:
        low, high = 0.5 * agent.target_return, 1.5 * agent.target_return
    return [float(x) for x in np.round(np.linspace(low, high, n), 1)]


def calibrate_target(agent: Any, env: EnvLike, targets: Sequence[float] | None = None, n_episodes: int = 5,
                     seed: int = CALIBRATION_SEED, n_envs: int = 1, *,
                     allow_env_mismatch: bool = False) -> Calibration:
    """Evaluate ``agent`` at each target return on the same episodes; the agent's target is restored after.

    Args:
        agent: an agent with a settable ``target_return`` (e.g. :class:`~seqpolicy.DecisionTransformerAgent`).
        env: env id or factory, as for :func:`~seqpolicy.evaluate`.
        targets: returns to try; default :func:`default_targets`.
        n_episodes, seed, n_envs: per target, as for :func:`~seqpolicy.evaluate`; ``seed`` defaults to
            :data:`CALIBRATION_SEED`, held out from the seeds evaluations score by default.
        allow_env_mismatch: as for :func:`~seqpolicy.evaluate`.

    Example:
        >>> cal = calibrate_target(agent, "Hopper-v4", [1800, 2700, 3600], n_episodes=5)  # doctest: +SKIP
        >>> agent.target_return = cal.best_target  # doctest: +SKIP
    """
    if not hasattr(agent, "target_return"):
        raise TypeError(f"{type(agent).__name__} is not return-conditioned (no target_return): nothing to calibrate.")
    targets = [float(t) for t in (targets if targets is not None else default_targets(agent))]
    if not targets or not all(np.isfinite(targets)):
        raise ValueError(f"targets must be a non-empty list of finite returns, got {targets}.")
    original = agent.target_return
    results = []
    try:
        for target in targets:
            agent.target_return = target
            results.append(evaluate(agent, env, n_episodes=n_episodes, seed=seed, n_envs=n_envs,
                                    allow_env_mismatch=allow_env_mismatch))
    finally:
        agent.target_return = original
    return Calibration(results[0].env_id, targets, results)
