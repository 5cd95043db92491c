"""Scores over training seeds: a table per (env, dataset, agent) and the aggregate over tasks, with a chart.

    # per env and agent: every training seed the zoo holds, on the same 100 episodes
    seqpolicy-eval --env Hopper-v4 --agent dt --training-seeds all --episodes 100 --seed 0 --n-envs 10 \\
        --no-video --json runs/seeds/Hopper-v4-dt.json
    python envs/make_table.py runs/seeds/*.json --out runs/seeds/seeds.md --chart runs/seeds/aggregate.png

Reads ``seqpolicy-eval --training-seeds ... --json`` files (one per env and agent, or one per seed: a file from
``--training-seeds 3`` holds seed 3 alone) and writes

- a markdown file: per task (env and dataset) and agent, the mean over seeds of each seed's mean D4RL-normalised
  score with its 95% CI from a stratified bootstrap (seeds, then episodes within each seed), and each seed's
  mean; then per agent, the mean and the interquartile mean (IQM) over tasks with stratified-bootstrap CIs
  (rliable's aggregate metrics, computed by :mod:`seqpolicy.evaluation.aggregate`);
- a chart of the aggregate: per agent, mean and IQM with their CIs.

An agent is named by the file's label (its zoo name) and a task by the env and the dataset its agents were
trained on (``medium`` for ``seqpolicy/hopper-v4/medium-v0``). Nothing is evaluated here, and the README is not
touched (envs/make_summary.py writes the README's table).
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from zoo_common import dataset_name, markdown_table, replace_block

from seqpolicy.common.artifact import atomic_write_bytes
from seqpolicy.evaluation.aggregate import AggregateScores, SeedSummary, across_seeds, aggregate
from seqpolicy.evaluation.evaluate import EvalResult
from seqpolicy.evaluation.figures import new_figure, save_png
from seqpolicy.zoo import ZooError, manifest_file, read_card

ENVS = Path(__file__).resolve().parent

Task = tuple[str, str]
"""(env id, dataset short name), e.g. ("Hopper-v4", "medium")."""


@dataclass(frozen=True)
class SeedRun:
    """One training seed's agent on one task: its per-episode D4RL-normalised scores."""

    env_id: str
    dataset: str
    """The dataset's short name: ``medium`` for ``seqpolicy/hopper-v4/medium-v0``."""
    agent: str
    training_seed: int
    scores: list[float]
    episode_seeds: list[int]
    source: str
    """The file it was read from."""

    @property
    def task(self) -> Task:
        return self.env_id, self.dataset


def algorithm(label: str, dataset: str) -> str:
    """The agent a zoo name stands for across tasks: ``dt-medium-expert`` on ``medium-expert`` is ``dt``."""
    return label.removesuffix(f"-{dataset}") if label.endswith(f"-{dataset}") else label


def load_seed_runs(paths: Iterable[str | Path]) -> list[SeedRun]:
    """Every training seed's result in ``seqpolicy-eval --training-seeds ... --json`` files.

    Raises:
        ValueError: a file is not such a result, a result has no normalised score or no dataset, or two files
            hold the same seed of the same agent and task; the message names the file.
    """
    runs: dict[tuple[str, str, str, int], SeedRun] = {}
    for path in map(Path, paths):
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}).") from e
        if not isinstance(doc, dict) or not isinstance(doc.get("evaluations"), list):
            raise ValueError(f"{path} holds no per-seed results: expected the --json file of `seqpolicy-eval --env "
                             "ENV --agent NAME --training-seeds all` (a plain seqpolicy-eval result names no seed).")
        for entry in doc["evaluations"]:
            try:
                result = EvalResult.from_dict(entry["evaluation"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}: an entry of 'evaluations' is not an evaluation result ({e}).") from e
            seed = entry.get("training_seed")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"{path}: an entry of 'evaluations' has training_seed {seed!r}, not an integer.")
            if not result.normalized:
                raise ValueError(f"{path}: {result.env_id} has no D4RL reference scores, and the table is of "
                                 "normalised scores (Hopper, HalfCheetah, Walker2d).")
            if not result.dataset:
                raise ValueError(f"{path}: training seed {seed}'s agent names no dataset, so its task is unknown: "
                                 "save agents with their dataset_id (seqpolicy-train does).")
            dataset = dataset_name(result.dataset)
            run = SeedRun(env_id=result.env_id, dataset=dataset, agent=algorithm(str(doc.get("label")), dataset),
                          training_seed=int(seed), scores=list(result.normalized["per_episode"]),
                          episode_seeds=list(result.seeds), source=str(path))
            key = (run.agent, *run.task, run.training_seed)
            if key in runs:
                raise ValueError(f"Training seed {run.training_seed} of {run.agent} on {' '.join(run.task)} is in "
                                 f"both {runs[key].source} and {path}: pass one of them.")
            runs[key] = run
    return list(runs.values())


def by_agent(runs: Iterable[SeedRun]) -> dict[str, dict[Task, dict[int, SeedRun]]]:
    """``{agent: {task: {training seed: run}}}``, agents and tasks in the order found, seeds sorted."""
    grouped: dict[str, dict[Task, dict[int, SeedRun]]] = {}
    for run in runs:
        grouped.setdefault(run.agent, {}).setdefault(run.task, {})[run.training_seed] = run
    for agent, tasks in grouped.items():
        for task, seeds in tasks.items():
            tasks[task] = dict(sorted(seeds.items()))
            if len({tuple(r.episode_seeds) for r in seeds.values()}) > 1:
                warnings.warn(f"{agent} on {' '.join(task)}: the training seeds were scored on different episodes; "
                              "evaluate them together with seqpolicy-eval --training-seeds so that they share "
                              "episodes.", stacklevel=2)
    return grouped


def task_summaries(runs: Iterable[SeedRun], **bootstrap) -> dict[str, dict[Task, SeedSummary]]:
    """Per agent and task, the mean over seeds with its stratified-bootstrap CI and each seed's mean."""
    return {agent: {task: across_seeds({s: r.scores for s, r in seeds.items()}, **bootstrap)
                    for task, seeds in tasks.items()}
            for agent, tasks in by_agent(runs).items()}


def aggregates(runs: Iterable[SeedRun], **bootstrap) -> dict[str, AggregateScores]:
    """Per agent, mean and IQM over its tasks with stratified-bootstrap CIs. Agents that cover different tasks
    get a warning: their aggregates are not comparable."""
    grouped = by_agent(runs)
    task_sets = {agent: set(tasks) for agent, tasks in grouped.items()}
    if len({frozenset(t) for t in task_sets.values()}) > 1:
        every = set.union(*task_sets.values())
        lacking = "; ".join(f"{a} lacks {', '.join(' '.join(t) for t in sorted(every - ts))}"
                            for a, ts in task_sets.items() if every - ts)
        warnings.warn(f"The agents were scored on different tasks ({lacking}): their aggregates are not "
                      "comparable.", stacklevel=2)
    return {agent: aggregate({" ".join(task): {s: r.scores for s, r in seeds.items()} for task, seeds in tasks.items()},
                             **bootstrap)
            for agent, tasks in grouped.items()}


def _ci(ci: Sequence[float]) -> str:
    return f"{ci[0]:.1f} to {ci[1]:.1f}"


def data_level(env_id: str, dataset: str, envs: Path = ENVS) -> str:
    """The dataset's own mean episode return and D4RL-normalised score, from its card ("" without one)."""
    card = envs / env_id / "datasets" / f"{dataset}.json"
    if not card.is_file():
        return ""
    doc = json.loads(card.read_text())
    return f"{doc['d4rl_normalized_mean_return']:.1f} ({doc['return']['mean']:.0f})"


def selected_score(env_id: str, dataset: str, agent: str, envs: Path = ENVS) -> str:
    """The zoo's designated ``agent`` of ``env_id`` when it was selected by acting in the env (its card's
    "selected") and trained on ``dataset``: its 100-episode normalised score and CI on the test seeds; else ""."""
    manifest = manifest_file(envs / env_id)
    if not manifest.is_file():
        return ""
    agents = json.loads(manifest.read_text()).get("agents", {})
    artifact = agents.get(f"{agent}-{dataset}") or agents.get(agent)  # dt-medium-expert, else dt (on medium)
    try:
        doc = read_card(envs / env_id / artifact) if artifact else None  # <artifact>/card.json
    except ZooError as e:
        raise ValueError(str(e)) from e
    if not doc:
        return ""
    ev = doc.get("evaluation") or {}
    if not doc.get("selected") or dataset_name(doc.get("dataset", "")) != dataset or "d4rl_normalized" not in ev:
        return ""
    return f"{ev['d4rl_normalized']:.1f} ({_ci(ev['d4rl_normalized_ci95'])})"


def task_table(summaries: Mapping[str, Mapping[Task, SeedSummary]], envs: Path = ENVS) -> str:
    """Markdown: a row per task and agent (tasks in env, then dataset order), with the data's own level and, where
    the zoo's designated agent was selected by acting in the env, its score apart."""
    rows = [["env", "dataset", "data: score (return)", "agent", "seeds", "episodes per seed", "final weights: mean "
             "over seeds", "95% CI", "per seed", "selected (one agent)"], ["---"] * 4 + ["---:"] * 6]
    cells = [(task, agent, s) for agent, tasks in summaries.items() for task, s in tasks.items()]
    for (env_id, dataset), agent, s in sorted(cells, key=lambda c: c[0]):
        episodes = "/".join(map(str, sorted(set(s.episodes))))
        per_seed = ", ".join(f"{seed}: {m:.1f}" for seed, m in zip(s.seeds, s.seed_means, strict=True))
        rows.append([env_id, dataset, data_level(env_id, dataset, envs), agent, str(len(s.seeds)), episodes,
                     f"**{s.mean:.1f}**", _ci(s.ci), per_seed, selected_score(env_id, dataset, agent, envs)])
    return markdown_table(rows)


def aggregate_table(aggs: Mapping[str, AggregateScores]) -> str:
    """Markdown: a row per agent with its mean and IQM over tasks."""
    rows = [["agent", "tasks", "seeds per task", "mean", "95% CI", "IQM", "95% CI"], ["---"] + ["---:"] * 6]
    for agent, a in aggs.items():
        seeds = "/".join(map(str, sorted(set(a.seeds_per_task))))
        rows.append([agent, str(len(a.tasks)), seeds, f"**{a.mean:.1f}**", _ci(a.mean_ci), f"**{a.iqm:.1f}**",
                     _ci(a.iqm_ci)])
    return markdown_table(rows)


def markdown(runs: Sequence[SeedRun], **bootstrap) -> str:
    """The whole report: the per-task table, the aggregate table and a note on how they were computed."""
    return report(task_summaries(runs, **bootstrap), aggregates(runs, **bootstrap))


def report(summaries: Mapping[str, Mapping[Task, SeedSummary]], aggs: Mapping[str, AggregateScores]) -> str:
    """:func:`markdown` from the bootstraps already computed."""
    some = next(iter(aggs.values()))
    note = ("D4RL-normalised scores. The datasets are made here (envs/<EnvId>/datasets/), not D4RL's, and their "
            "levels differ (the Walker2d-v4 medium data is far weaker than D4RL's walker2d-medium): compare an agent "
            "with its data's column, not with the papers' tables. "
            "\"Selected\": the zoo's designated agent where its checkpoint or settings were chosen by acting in the "
            "env on held-out seeds (its card's \"selected\" says how), one training seed, 100 test episodes. "
            f"Per task: the mean over training seeds of each seed's mean over its episodes, "
            f"with a {some.confidence:.0%} percentile CI from a stratified bootstrap ({some.n_resamples} resamples: "
            "seeds drawn with replacement, then each drawn seed's episodes). Aggregate: mean of the task means and "
            "IQM (mean of the middle 50% of all seed means pooled over tasks), CIs from resampling each task's seeds "
            "(and their episodes) independently (rliable's stratified bootstrap; seqpolicy.evaluation.aggregate).")
    return ("## Per task\n\n" + task_table(summaries) + "\n\n## Aggregate over tasks\n\n"
            + aggregate_table(aggs) + "\n\n" + note + "\n")


README_BEGIN, README_END = "<!-- seeds: begin -->", "<!-- seeds: end -->"


def readme_block(runs: Sequence[SeedRun], chart: str | None = None, **bootstrap) -> str:
    """The README's part of the report: per task and agent the final-weights mean over seeds with its CI beside the
    data's level and the selected agent's score; the aggregate per agent; the chart when given (a path relative
    to the README)."""
    return readme_part(task_summaries(runs, **bootstrap), aggregates(runs, **bootstrap), chart)


def readme_part(summaries: Mapping[str, Mapping[Task, SeedSummary]], aggs: Mapping[str, AggregateScores],
                chart: str | None = None) -> str:
    """:func:`readme_block` from the bootstraps already computed."""
    rows = [["env", "dataset", "data", "agent", "final weights: mean over seeds", "95% CI", "seeds",
             "selected (one agent)"], ["---"] * 4 + ["---:"] * 4]
    cells = [(task, agent, s) for agent, tasks in summaries.items() for task, s in tasks.items()]
    for (env_id, dataset), agent, s in sorted(cells, key=lambda c: c[0]):
        rows.append([env_id, dataset, data_level(env_id, dataset), agent, f"**{s.mean:.1f}**", _ci(s.ci),
                     str(len(s.seeds)), selected_score(env_id, dataset, agent) or "-"])
    agg = [["agent", "tasks", "mean over tasks", "95% CI", "IQM", "95% CI"], ["---"] + ["---:"] * 5]
    for agent, a in aggs.items():
        agg.append([agent, str(len(a.tasks)), f"**{a.mean:.1f}**", _ci(a.mean_ci), f"**{a.iqm:.1f}**", _ci(a.iqm_ci)])
    table, aggregate = markdown_table(rows), markdown_table(agg)
    note = ("D4RL-normalised scores; data: the dataset's own score (mean return). Final weights: each training "
            "seed's last weights at its declared target, 100 test episodes (seeds 0-99) each; CIs from a stratified "
            "bootstrap (seeds, then episodes). Selected: the designated agent, chosen by acting on held-out seeds. "
            "Written by `python envs/make_table.py envs/*/results/seeds/*.json --out envs/seeds.md --chart "
            "envs/seeds.png --readme README.md`; every seed in [envs/seeds.md](envs/seeds.md), every seed's held-out "
            "learning curve in `envs/<EnvId>/research/seed-curves/` (`python envs/seed_curves.py`).")
    image = f"\n\n![Aggregate over tasks: mean and IQM with 95% CIs]({chart})" if chart else ""
    return table + "\n\n" + aggregate + "\n\n" + note + image


def plot_aggregates(aggs: Mapping[str, AggregateScores], path: str | Path, title: str = "") -> Path:
    """A chart of :func:`aggregates` as rliable draws them: one panel per metric (mean, IQM), a row per agent,
    its point estimate and CI as a bar."""
    agents = list(aggs)
    fig, ax = new_figure("aggregate chart", (8.0, 1.2 + 0.45 * len(agents)))
    ax.remove()
    panels = fig.subplots(1, 2, sharey=True)
    for panel, (metric, point, ci) in zip(panels, (("Mean", "mean", "mean_ci"), ("IQM", "iqm", "iqm_ci")),
                                          strict=True):
        for y, agent in enumerate(agents):
            a = aggs[agent]
            low, high = getattr(a, ci)
            panel.barh(y, high - low, left=low, height=0.6, color=f"C{y}", alpha=0.6)
            panel.plot([getattr(a, point)] * 2, [y - 0.3, y + 0.3], color="black", linewidth=1.5)
        panel.set_title(metric)
        panel.set_xlabel("D4RL-normalised score")
        panel.grid(axis="x", alpha=0.3)
    panels[0].set_yticks(range(len(agents)), agents)
    panels[0].invert_yaxis()
    some = next(iter(aggs.values()))
    seeds = "/".join(map(str, sorted(set(some.seeds_per_task))))
    fig.suptitle(title or f"D4RL-normalised score over {len(some.tasks)} tasks, {seeds} training seeds each: "
                 f"mean and IQM with {some.confidence:.0%} stratified-bootstrap CIs", fontsize=9)
    return save_png(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="seqpolicy-eval --training-seeds --json files")
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--chart", type=Path, default=None, help="PNG of the aggregate (default: none)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    parser.add_argument("--readme", type=Path, default=None,
                        help=f"also replace the block between {README_BEGIN} and {README_END} of this file (the "
                             "repo's README.md) with the per-task final-weights table and the aggregate")
    args = parser.parse_args(argv)
    try:
        runs = load_seed_runs(args.results)
    except ValueError as e:
        raise SystemExit(f"make_table.py: {e}") from None
    bootstrap = {"n_resamples": args.resamples, "seed": args.seed}
    summaries, aggs = task_summaries(runs, **bootstrap), aggregates(runs, **bootstrap)  # each bootstrap once
    atomic_write_bytes(args.out, ("# Scores over training seeds\n\n" + report(summaries, aggs)).encode())
    print(f"wrote {args.out}")
    if args.chart:
        plot_aggregates(aggs, args.chart)
        print(f"wrote {args.chart}")
    if args.readme:
        chart = None
        if args.chart:
            chart = os.path.relpath(args.chart.resolve(), args.readme.resolve().parent)
        if not replace_block(args.readme, README_BEGIN, README_END, readme_part(summaries, aggs, chart)):
            raise SystemExit(f"make_table.py: {args.readme} has no {README_BEGIN} ... {README_END} block; add the two "
                             "markers where the table belongs.")
        print(f"updated the seeds table in {args.readme}")


if __name__ == "__main__":
    main()
