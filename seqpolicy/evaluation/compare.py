"""Compare agents with the same harness and the same seeds: markdown table, JSON and a bar chart with CIs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqpolicy.common.artifact import atomic_write_bytes, atomic_write_json, read_json
from seqpolicy.evaluation.evaluate import EnvLike, EvalResult, evaluate
from seqpolicy.evaluation.figures import new_figure, save_png
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

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> Comparison:
        """Read the ``comparison.json`` that :meth:`save` (or ``seqpolicy-compare``) wrote.

        Raises:
            ValueError: the file is not JSON or not a comparison (names the file).
        """
        doc = read_json(path, ": run seqpolicy-compare again to rewrite it")
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict) or "env_id" not in doc:
            raise ValueError(f"{path} is not a comparison: expected {{'env_id': ..., 'results': {{agent: ...}}}} "
                             "as seqpolicy-compare writes.")
        try:
            results = {name: EvalResult.from_dict(r) for name, r in doc["results"].items()}
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        return cls(env_id=doc["env_id"], results=results)

    def plot(self, path: str | os.PathLike) -> Path:
        """Bar chart of mean scores with 95% CI error bars (D4RL-normalised when available)."""
        names = list(self.results)
        normalised = all(r.normalized for r in self.results.values())
        means, lows, highs = _bars(self.results.values(), normalised)
        fig, ax = new_figure("comparison chart", (max(4.0, 1.2 * len(names) + 2), 3.6))
        ax.bar(names, means, yerr=[lows, highs], capsize=6, color="#4c72b0")
        ax.set_ylabel("D4RL-normalised score" if normalised else "episode return")
        ax.set_title(f"{self.env_id}\n{_bars_title(self.results.values())}", fontsize=9)
        ax.axhline(0, color="black", linewidth=0.6)
        return save_png(fig, path)

    def save(self, folder: str | os.PathLike, stem: str = "comparison") -> dict[str, Path]:
        """Write ``<stem>.md``, ``<stem>.json`` and ``<stem>.png`` into ``folder``; returns their paths."""
        folder = Path(folder)
        md, js, png = (folder / f"{stem}{ext}" for ext in (".md", ".json", ".png"))
        atomic_write_bytes(md, (f"# {self.env_id}\n\n" + self.markdown() + "\n").encode())
        atomic_write_json(js, self.to_dict())
        self.plot(png)
        return {"markdown": md, "json": js, "png": png}


def plot_envs(comparisons: Sequence[Comparison], path: str | os.PathLike, title: str = "",
              agents: Sequence[str] | None = None) -> Path:
    """One grouped bar chart of D4RL-normalised scores for several envs: a group per agent (in ``agents``'
    order; default: as found), a bar per env, 95% CI error bars (none from fewer than ``MIN_CI_EPISODES``
    episodes). Agents an env lacks leave a gap; results without a normalised score are left out.

    Raises:
        ValueError: no comparison has a D4RL-normalised result.
    """
    scored = [(c.env_id, {a: r for a, r in c.results.items() if r.normalized}) for c in comparisons]
    scored = [(env, rs) for env, rs in scored if rs]
    if not scored:
        raise ValueError("plot_envs needs D4RL-normalised results (Hopper, HalfCheetah or Walker2d).")
    found = list(dict.fromkeys(a for _, rs in scored for a in rs))
    agents = [a for a in (agents or found) if a in found]
    width = 0.8 / len(scored)
    fig, ax = new_figure("comparison chart", (max(6.0, 0.9 * len(agents) * len(scored) ** 0.5 + 2), 4.0))
    for i, (env, rs) in enumerate(scored):
        present = [j for j, agent in enumerate(agents) if agent in rs]
        means, lows, highs = _bars([rs[agents[j]] for j in present], normalised=True)
        ax.bar([j - 0.4 + width * (i + 0.5) for j in present], means, width=width, yerr=[lows, highs],
               capsize=3, label=env)
    ax.set_xticks(range(len(agents)), agents)
    ax.set_ylabel("D4RL-normalised score")
    ax.set_title(title or _bars_title([r for _, rs in scored for r in rs.values()]), fontsize=9)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def _bars(results: Iterable[EvalResult], normalised: bool) -> tuple[list[float], list[float], list[float]]:
    """Bar heights and error-bar extents below/above: mean and 95% CI of the return or D4RL score. No error
    bar from fewer than ``MIN_CI_EPISODES`` episodes (a CI that means nothing, see CI_NOTE)."""
    means, lows, highs = [], [], []
    for r in results:
        mean, ci = (r.normalized["mean"], r.normalized["ci95"]) if normalised else (r.mean, r.ci95)
        few = r.n_episodes < MIN_CI_EPISODES
        means.append(mean)
        lows.append(0.0 if few else mean - ci[0])
        highs.append(0.0 if few else ci[1] - mean)
    return means, lows, highs


def _bars_title(results: Iterable[EvalResult]) -> str:
    n_eps = sorted({r.n_episodes for r in results})
    bars = "95% bootstrap CI" if n_eps[0] >= MIN_CI_EPISODES else f"95% CI where >= {MIN_CI_EPISODES} episodes"
    return f"mean and {bars}, {', '.join(map(str, n_eps))} episodes each"


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
