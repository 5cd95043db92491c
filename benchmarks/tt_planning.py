"""Does the Trajectory Transformer's search pay off, and from how much training on? Return against training
compute, one line per planner.

Every agent (e.g. a run's ``snapshots/step-*`` from ``seqpolicy-train tt --snapshot-every N``, or a shipped
agent) is evaluated with every planner on the same episodes. A planner is ``NAME=SETTINGS``, where SETTINGS are
``seqpolicy-eval --planner`` words joined by spaces: an optional preset, then KEY=VALUE overrides::

    python benchmarks/tt_planning.py --env Hopper-v4 --agents ~/runs/hopper-tt/snapshots/step-* \\
        --planner "greedy=greedy beam_width=1 n_expand=1 plan_freq=1" \\
        --planner "beam16=cpu plan_freq=1" --episodes 20 --seed 1000 --out ~/runs/hopper-tt-curve

Choose planners and checkpoints on held-out seeds (the default, 1000 on); seeds 0-99 are the zoo's test seeds,
for the final report of choices already made. Writes ``--out/curve.json`` (every evaluation: mean, 95% CI,
returns, env steps, wall time), ``curve.md`` and ``curve.png`` (x: training sequences = steps x batch size);
each finished evaluation is kept under ``--out/results/``, named by agent, planner and seeds (e.g.
``step-0008000_beam16x2-h5-every2-cdf0.6_seeds-1000-1009.json``), and reused when the same agent files, planner
and seeds come again, so an interrupted sweep continues. Time per 1000 env steps is reported too: with
``--n-envs 1`` it is the time a 1000-step episode takes on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from seqpolicy.agents.tt import TrajectoryTransformerAgent
from seqpolicy.agents.tt.planner import planner_from_args
from seqpolicy.common.artifact import atomic_write_bytes, atomic_write_json
from seqpolicy.evaluation.evaluate import EvalResult, evaluate
from seqpolicy.evaluation.figures import new_figure, save_png
from seqpolicy.evaluation.scores import MIN_CI_EPISODES

TEST_SEEDS = range(100)


def planner_spec(text: str) -> tuple[str, list[str]]:
    """``"name=preset key=value ..."`` -> (name, words)."""
    name, sep, settings = text.partition("=")
    if not sep or not name.strip() or " " in name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=SETTINGS, e.g. 'greedy=greedy beam_width=1'.")
    return name.strip(), settings.split()


def files_hash(folder: Path) -> str:
    """A hash of the files that make the agent act (its zoo card.json, like the README.md, aside)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors")
                    and p.relative_to(folder).as_posix() != "card.json"):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def planner_label(planner: dict) -> str:
    """The search in a file name: beam width x expansions, horizon, replanning period, action tokens drawn.

    Example:
        >>> planner_label({"beam_width": 16, "n_expand": 2, "horizon": 5, "plan_freq": 2, "k_act": None,
        ...                "cdf_act": 0.6})
        'beam16x2-h5-every2-cdf0.6'
    """
    act = (f"top{planner['k_act']}" if planner.get("k_act") else f"cdf{planner['cdf_act']:g}" if planner.get("cdf_act")
           else "all")
    return f"beam{planner['beam_width']}x{planner['n_expand']}-h{planner['horizon']}-every{planner['plan_freq']}-{act}"


def result_file(out: Path, folder: Path, planner: dict, seed: int, episodes: int, key: str) -> Path:
    """``out/results/<agent>_<planner>_seeds-<first>-<last>.json``: the file holding this evaluation (its ``key``),
    or a free one; a second evaluation of the same name (another run's snapshot of the same step, other planner
    settings the label leaves out) gets ``-2``, ``-3``..."""
    stem = f"{folder.name}_{planner_label(planner)}_seeds-{seed}-{seed + episodes - 1}"
    n, path = 1, out / "results" / f"{stem}.json"
    while path.is_file() and json.loads(path.read_text()).get("key") != key:
        n += 1
        path = out / "results" / f"{stem}-{n}.json"
    return path


def evaluate_one(folder: Path, planner_words: list[str], args: argparse.Namespace, out: Path) -> dict:
    agent = TrajectoryTransformerAgent.load(folder, device="cpu")
    agent.planner = planner_from_args(agent.planner, planner_words)
    key = hashlib.sha256(json.dumps([files_hash(folder), agent.planner.to_dict(), args.env, args.episodes,
                                     args.seed, args.n_envs]).encode()).hexdigest()[:16]
    cache = result_file(out, folder, agent.planner.to_dict(), args.seed, args.episodes, key)
    for saved in (cache, out / "results" / f"{key}.json"):  # <key>.json: named by the hash before
        if saved.is_file():
            return json.loads(saved.read_text())
    result = evaluate(agent, args.env, args.episodes, args.seed, args.n_envs, progress="auto")
    info = agent.info
    doc = {"agent": str(folder), "key": key, "train_steps": info.get("train_steps"),
           "batch_size": (info.get("train_config") or {}).get("batch_size"),
           "train_wall_time_s": info.get("train_wall_time_s"), "planner": agent.planner.to_dict(),
           "s_per_1000_env_steps": 1000 * result.wall_time_s / max(result.env_steps, 1),
           "evaluation": result.to_dict()}
    atomic_write_json(cache, doc)
    return doc


def table(rows: list[dict]) -> str:
    lines = ["| agent | train steps | planner | return (mean +- std) | 95% CI | s per 1000 env steps |",
             "| --- | ---: | --- | ---: | --- | ---: |"]
    for r in rows:
        e = EvalResult.from_dict(r["evaluation"])
        lines.append(f"| {Path(r['agent']).name} | {r['train_steps']} | {r['name']} | {e.mean:.1f} +- {e.std:.1f} "
                     f"| {e.format_ci(e.ci95)} | {r['s_per_1000_env_steps']:.1f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    fig, ax = new_figure("planning curve", (6.0, 4.0))
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: r["train_steps"] or 0)
        xs = [(r["train_steps"] or 0) * (r["batch_size"] or 1) for r in mine]
        es = [EvalResult.from_dict(r["evaluation"]) for r in mine]
        ax.plot(xs, [e.mean for e in es], marker="o", label=name)
        if all(e.n_episodes >= MIN_CI_EPISODES for e in es):
            ax.fill_between(xs, [e.ci95[0] for e in es], [e.ci95[1] for e in es], alpha=0.2)
    ax.set_xlabel("training sequences (steps x batch size)")
    ax.set_ylabel("episode return")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save_png(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="env id, e.g. Hopper-v4")
    p.add_argument("--agents", nargs="+", type=Path, required=True, help="TT agent folders (snapshots, runs' agent/)")
    p.add_argument("--planner", action="append", type=planner_spec, required=True, metavar="NAME=SETTINGS",
                   help="a planner to compare (repeat the option): NAME=[PRESET] [KEY=VALUE ...]")
    p.add_argument("--episodes", type=int, default=10, help="episodes per agent and planner (default 10)")
    p.add_argument("--seed", type=int, default=1000, help="first episode's seed (default 1000: held out)")
    p.add_argument("--n-envs", type=int, default=10, help="envs planned in one batch (default 10)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, required=True, help="folder for curve.json/.md/.png and results/")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = [str(a) for a in args.agents if not (a / "agent.json").is_file()]
    if missing:
        p.error(f"not agent folders (no agent.json): {', '.join(missing)}")
    for name, words in args.planner:  # check every planner before the first evaluation
        try:
            planner_from_args(TrajectoryTransformerAgent.load(args.agents[0]).planner, words)
        except ValueError as e:
            p.error(f"--planner {name}: {e}")
    if set(range(args.seed, args.seed + args.episodes)) & set(TEST_SEEDS):
        print("note: seeds 0-99 are the zoo's test seeds: report choices with them, never make them.")
    rows = []
    for folder in args.agents:
        for name, words in args.planner:
            doc = evaluate_one(folder, words, args, args.out)
            rows.append({**doc, "name": name})
            e = doc["evaluation"]
            print(f"{folder.name} ({doc['train_steps']} steps) {name}: {e['mean']:.1f} "
                  f"(CI {e['ci95'][0]:.1f}-{e['ci95'][1]:.1f}), {doc['s_per_1000_env_steps']:.1f} s per 1000 env "
                  "steps", flush=True)
    seeds = f"seeds {args.seed}-{args.seed + args.episodes - 1}"
    atomic_write_json(args.out / "curve.json", {"env_id": args.env, "seeds": seeds, "n_envs": args.n_envs,
                                                "threads": args.threads, "rows": rows})
    md = table(rows)
    atomic_write_bytes(args.out / "curve.md", f"# {args.env}: TT return against training, {seeds}\n\n{md}\n".encode())
    plot(rows, args.out / "curve.png", f"{args.env}: TT return by planner, {args.episodes} episodes ({seeds})")
    print(md)


if __name__ == "__main__":
    main()
