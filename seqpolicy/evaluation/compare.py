"""Compare agents with the same harness and the same seeds: markdown table, JSON and a bar chart with CIs."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqpolicy.common.artifact import atomic_write_bytes, atomic_write_json
from seqpolicy.evaluation.evaluate import EnvLike, EvalResult, evaluate
from seqpolicy.evaluation.scores import CI_NOTE, MIN_CI_EPISODES


@dataclass
class Comparison:
    """Evaluation results of several agents on one env, episode for episode on the same seeds."""

    env_id: str
    results: dict[str, EvalResult]

    def markdown(self) -> str:
        """A markdown table: one row per agent."""
        return results_table(self.results)

    def to_dict(self) -> dict:
        return {"env_id": self.env_id, "results": {k: r.to_dict() for k, r in self.results.items()}}

    def plot(self, path: str | os.PathLike) -> Path:
        """Bar chart of mean scores with 95% CI error bars (D4RL-normalised when available)."""
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError("The comparison chart needs matplotlib: pip install 'seqpolicy[plot]'.") from e
        names = list(self.results)
        normalised = all(r.normalized for r in self.results.values())
        means, lows, highs = [], [], []
        for r in self.results.values():
            mean, ci = (r.normalized["mean"], r.normalized["ci95"]) if normalised else (r.mean, r.ci95)
            means.append(mean)
            few = r.n_episodes < MIN_CI_EPISODES  # no error bar from a CI that means nothing (see CI_NOTE)
            lows.append(0.0 if few else mean - ci[0])
            highs.append(0.0 if few else ci[1] - mean)
        fig = Figure(figsize=(max(4.0, 1.2 * len(names) + 2), 3.6), dpi=100)
        ax = fig.add_subplot()
        ax.bar(names, means, yerr=[lows, highs], capsize=6, color="#4c72b0")
        n_eps = sorted({r.n_episodes for r in self.results.values()})
        ax.set_ylabel("D4RL-normalised score" if normalised else "episode return")
        bars = "95% bootstrap CI" if n_eps[0] >= MIN_CI_EPISODES else f"95% CI where >= {MIN_CI_EPISODES} episodes"
        ax.set_title(f"{self.env_id}\nmean and {bars}, {', '.join(map(str, n_eps))} episodes each", fontsize=9)
        ax.axhline(0, color="black", linewidth=0.6)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    def save(self, folder: str | os.PathLike, stem: str = "comparison") -> dict[str, Path]:
        """Write ``<stem>.md``, ``<stem>.json`` and ``<stem>.png`` into ``folder``; returns their paths."""
        folder = Path(folder)
        md, js, png = (folder / f"{stem}{ext}" for ext in (".md", ".json", ".png"))
        atomic_write_bytes(md, (f"# {self.env_id}\n\n" + self.markdown() + "\n").encode())
        atomic_write_json(js, self.to_dict())
        self.plot(png)
        return {"markdown": md, "json": js, "png": png}


def results_table(results: Mapping[str, EvalResult]) -> str:
    """Markdown table of results: return mean +- std, its 95% CI, and the D4RL score where the env has one.

    Every agent gets the same columns (``-`` where an agent has no training dataset); the D4RL columns come
    with the env. CIs from fewer than ``MIN_CI_EPISODES`` episodes read ``n/a``, with a note under the table.
    """
    with_norm = any(r.normalized for r in results.values())
    head = ["agent", "env", "dataset", "episodes", "seeds", "return (mean +- std)", "95% CI"]
    if with_norm:
        head += ["D4RL score", "D4RL 95% CI"]
    rows = [head, ["---"] * len(head)]
    for name, r in results.items():
        seeds = f"{r.seeds[0]}-{r.seeds[-1]}" if len(r.seeds) > 1 else str(r.seed)
        row = [name, r.env_id, r.dataset or "-", str(r.n_episodes), seeds, f"{r.mean:.1f} +- {r.std:.1f}",
               r.format_ci(r.ci95)]
        if with_norm:
            n = r.normalized
            row += [f"{n['mean']:.1f}", r.format_ci(n["ci95"])] if n else ["-", "-"]
        rows.append(row)
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    if any(r.n_episodes < MIN_CI_EPISODES for r in results.values()):
        table += f"\n\n{CI_NOTE}"
    return table


def compare(agents: Mapping[str, Any], env: EnvLike, n_episodes: int = 10, seed: int = 0, n_envs: int = 1,
            **kwargs: Any) -> Comparison:
    """Evaluate every agent on the same env and seeds (``kwargs`` go to :func:`~seqpolicy.evaluate`).

    Example:
        >>> cmp = compare({"dt": dt_agent, "random": random_agent}, "Hopper-v4", n_episodes=20)  # doctest: +SKIP
        >>> cmp.save("comparisons/hopper")                                                    # doctest: +SKIP
    """
    if not agents:
        raise ValueError("compare needs at least one agent.")
    results = {name: evaluate(agent, env, n_episodes, seed, n_envs, **kwargs) for name, agent in agents.items()}
    env_id = next(iter(results.values())).env_id
    return Comparison(env_id=env_id, results=results)
