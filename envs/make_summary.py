"""The zoo's results across envs: one table and one chart of D4RL-normalised scores, also put into the README.

    python envs/make_summary.py            # after `python envs/make_agents.py --env ENV evaluate` for each env

Reads every ``envs/<EnvId>/results/comparison.json`` (100 episodes per agent, seeds 0-99) and writes

- ``envs/results.md``: one row per agent, one column per env: D4RL-normalised score with its 95% CI and the
  mean return (the per-env tables, with std and dataset ids, stay in ``envs/<EnvId>/results/comparison.md``);
- ``envs/results.png``: a bar per agent and env, with 95% CI error bars;
- the README's block between ``<!-- zoo results: begin -->`` and ``<!-- zoo results: end -->``: the same table.

Nothing is evaluated here: the numbers are those of the comparison files, so README and cards cannot disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo_common import (
    ENVS,
    REPO,
    dataset_name,
    env_folder,
    evaluated_other_files,
    markdown_table,
    read_manifest,
    replace_block,
    zoo_envs,
)

from seqpolicy.common.artifact import atomic_write_bytes
from seqpolicy.evaluation.compare import Comparison, plot_envs
from seqpolicy.evaluation.evaluate import EvalResult
from seqpolicy.evaluation.scores import MIN_CI_EPISODES

BEGIN, END = "<!-- zoo results: begin -->", "<!-- zoo results: end -->"
ONLINE = {"td3": "online RL (the data's expert)", "td3-medium": "online RL (the data's medium policy)"}


def comparisons(envs: Path = ENVS) -> list[Comparison]:
    """Every zoo env's comparison.json that exists, in env order, without the results that evaluated other files
    than the shipped agent's (an agent re-shipped and not evaluated again: its cell says so)."""
    found = []
    for env_id in zoo_envs(envs):
        path = env_folder(env_id, envs) / "results" / "comparison.json"
        if path.is_file():
            comp = Comparison.load_json(path)
            for name in [n for n in comp.results if evaluated_other_files(env_folder(env_id, envs), env_id, n)]:
                del comp.results[name]
                print(f"{env_id} {name}: left out (its result is the evaluation of other files than the shipped "
                      f"ones: run python envs/make_agents.py --env {env_id} evaluate)")
            found.append(comp)
    return found


def trained_on(name: str, results: list[EvalResult]) -> str:
    """The dataset's short name (``medium`` for ``seqpolicy/hopper-v4/medium-v0``), the same in every env."""
    if name in ONLINE:
        return ONLINE[name]
    names = {dataset_name(r.dataset) for r in results if r.dataset}
    return ", ".join(sorted(names)) or "-"


def cell(r: EvalResult | None, in_zoo: bool = True) -> str:
    """A table cell: the normalised score, its CI and the return; for an agent without a result, whether the env's
    zoo lists it at all (``in_zoo``: its manifest names it) or does not have it."""
    if r is None:
        return "no 100-episode result yet" if in_zoo else "-"
    if not r.normalized:
        return f"return {r.mean:.1f}"
    n = r.normalized
    ci = f" ({n['ci95'][0]:.1f} to {n['ci95'][1]:.1f})" if r.n_episodes >= MIN_CI_EPISODES else ""
    return f"**{n['mean']:.1f}**{ci}<br>return {r.mean:.1f}"


def agent_order(comps: list[Comparison], envs: Path = ENVS) -> list[str]:
    """The agents in the manifests' order (dt first), then any others as found, random last."""
    listed = [a for c in comps for a in read_manifest(env_folder(c.env_id, envs)).get("agents", {})]
    found = [a for c in comps for a in c.results]
    return sorted(dict.fromkeys(listed + found).keys() & set(found),
                  key=lambda a: (a == "random", (listed + found).index(a)))


def table(comps: list[Comparison], agents: list[str], envs: Path = ENVS) -> str:
    head = ["agent", "trained on", *(c.env_id for c in comps)]
    rows = [head, ["---"] * 2 + ["---:"] * len(comps)]
    listed = {c.env_id: set(read_manifest(env_folder(c.env_id, envs)).get("agents", {})) for c in comps}
    for a in agents:
        found = [c.results[a] for c in comps if a in c.results]
        rows.append([a, trained_on(a, found), *(cell(c.results.get(a), a in listed[c.env_id]) for c in comps)])
    episodes = sorted({r.n_episodes for c in comps for r in c.results.values()})
    seeds = sorted({f"{r.seeds[0]}-{r.seeds[-1]}" for c in comps for r in c.results.values()})
    note = (f"D4RL-normalised score (**bold**) with its 95% bootstrap CI, and the mean return; "
            f"{'/'.join(map(str, episodes))} episodes per agent, seeds {', '.join(seeds)}; - where an env's zoo "
            "has no such agent.")
    return markdown_table(rows) + "\n\n" + note


def write_readme(readme: Path, block: str) -> bool:
    return replace_block(readme, BEGIN, END, block)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=REPO / "README.md",
                        help="README whose zoo-results block is replaced (default: the repo's)")
    args = parser.parse_args(argv)
    comps = comparisons(ENVS)
    order = agent_order(comps, ENVS)
    if not comps:
        sys.exit("No envs/<EnvId>/results/comparison.json yet: run python envs/make_agents.py --env ENV evaluate.")
    block = table(comps, order, ENVS)
    atomic_write_bytes(ENVS / "results.md", ("# The zoo's results\n\n" + block + "\n").encode())
    plot_envs(comps, ENVS / "results.png",
              title="seqpolicy zoo: D4RL-normalised score, mean and 95% bootstrap CI, 100 episodes (seeds 0-99)",
              agents=order)
    print(f"wrote {ENVS / 'results.md'} and {ENVS / 'results.png'} ({', '.join(c.env_id for c in comps)})")
    if write_readme(args.readme, block):
        print(f"updated the zoo results in {args.readme}")
    else:
        print(f"{args.readme} has no {BEGIN} ... {END} block: not changed")


if __name__ == "__main__":
    main()
