"""Learning curves of every training seed of a zoo agent, from the held-out curves their cards keep: where the
final weights score well below the selected agent, this shows why (a flat curve whose best point was picked).

    python envs/seed_curves.py --env Hopper-v4 --agent dt        # -> envs/Hopper-v4/research/seed-curves/dt.png
    python envs/seed_curves.py --env Hopper-v4 --agent dt-medium-expert --out runs/curves

Each line is one seed's held-out return (D4RL-normalised; 10 episodes per point on seeds 10000+, the mean action
at the declared target: ``envs/make_seeds.py``, nothing kept by it) against its training steps. Beside them: the
mean over seeds of the final weights' test score (``results/seeds/<NAME>-<N>.json``, 100 episodes on seeds
0-99) and, where the zoo's designated agent was selected by acting in the env, its test score. Nothing is
evaluated here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from zoo_common import ENVS, env_folder, read_manifest

from seqpolicy.evaluation.figures import new_figure, save_png
from seqpolicy.evaluation.scores import d4rl_normalize, d4rl_reference


def seed_curves(folder: Path, artifact: str, env_id: str) -> dict[int, list[tuple[int, float]]]:
    """(training step, normalised held-out return) points of every seed under ``seeds/<artifact>/`` whose card
    keeps a held-out curve, by seed (returns normalised here where a card kept the return alone)."""
    reference = d4rl_reference(env_id)
    out = {}
    cards = {int(card.parent.name): json.loads(card.read_text())
             for card in (folder / "seeds" / artifact).glob("*/card.json")}
    designated = folder / artifact / "card.json"  # a final-weights designated seed keeps its curve in its card
    if designated.is_file():
        doc = json.loads(designated.read_text())
        if "held_out_curve" in doc and doc.get("seed") is not None and not doc.get("selected"):
            cards.setdefault(int(doc["seed"]), doc)
    for seed, doc in sorted(cards.items()):
        points = doc.get("held_out_curve", {}).get("points") or []
        if points and reference is not None:
            out[seed] = [
                (int(p["step"]), float(p["normalized"]) if "normalized" in p
                 else float(d4rl_normalize(float(p["return"]), reference))) for p in points]
    return out


def test_scores(folder: Path, name: str, seeds: list[int]) -> dict[int, float]:
    """Each seed's 100-episode normalised test mean (results/seeds/<name>-<N>.json), where it exists."""
    out = {}
    for seed in seeds:
        path = folder / "results" / "seeds" / f"{name}-{seed}.json"
        if path.is_file():
            doc = json.loads(path.read_text())
            evaluation = doc["evaluations"][0]["evaluation"] if "evaluations" in doc else doc["evaluation"]
            out[seed] = float(evaluation["normalized"]["mean"])
    return out


def selected_test_score(folder: Path, artifact: str) -> float | None:
    """The designated agent's normalised test score when its card says it was selected by acting in the env."""
    card = folder / artifact / "card.json"
    if not card.is_file():
        return None
    doc = json.loads(card.read_text())
    evaluation = doc.get("evaluation") or {}
    return float(evaluation["d4rl_normalized"]) if doc.get("selected") and "d4rl_normalized" in evaluation else None


def plot(env_id: str, name: str, curves: dict[int, list[tuple[int, float]]], tests: dict[int, float],
         selected: float | None, path: Path) -> Path:
    fig, ax = new_figure("seed curves", (7.0, 4.0))
    for i, (seed, points) in enumerate(curves.items()):
        steps, scores = zip(*points, strict=True)
        label = f"seed {seed}" + (f" (test {tests[seed]:.1f})" if seed in tests else "")
        ax.plot(steps, scores, marker="o", markersize=3, color=f"C{i}", label=label)
    if tests:
        mean = sum(tests.values()) / len(tests)
        ax.axhline(mean, color="black", linestyle="--", linewidth=1,
                   label=f"final weights, mean of {len(tests)} seeds' tests: {mean:.1f}")
    if selected is not None:
        ax.axhline(selected, color="red", linestyle=":", linewidth=1.5, label=f"selected agent's test: {selected:.1f}")
    ax.set_xlabel("training step")
    ax.set_ylabel("D4RL-normalised return")
    ax.set_title(f"{env_id} {name}: held-out return of each training seed\n(10 episodes a point on seeds 10000+; "
                 "test scores: 100 episodes on seeds 0-99)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_png(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="a zoo env, e.g. Hopper-v4")
    p.add_argument("--agent", required=True, help="a zoo name with training seeds, e.g. dt or dt-medium-expert")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for <agent>.png (default: envs/<EnvId>/research/seed-curves/)")
    args = p.parse_args(argv)
    folder = env_folder(args.env, ENVS)
    artifact = read_manifest(folder).get("agents", {}).get(args.agent)
    if artifact is None:
        raise SystemExit(f"seed_curves.py: {args.env} has no zoo agent {args.agent!r}.")
    curves = seed_curves(folder, artifact, args.env)
    if not curves:
        raise SystemExit(f"seed_curves.py: no seed of {args.env} {args.agent} keeps a held-out curve in its card "
                         f"({folder / 'seeds' / artifact}/<N>/card.json; envs/make_seeds.py records one).")
    results = (folder / "results" / "seeds").glob("*.json")
    named = (re.fullmatch(rf"{re.escape(args.agent)}-(\d+)", f.stem) for f in results)
    held = [int(m[1]) for m in named if m]  # results/seeds/<agent>-<N>.json (not dt-medium-expert-N for dt)
    out = plot(args.env, args.agent, curves, test_scores(folder, args.agent, sorted(set(held) | set(curves))),
               selected_test_score(folder, artifact),
               (args.out or folder / "research" / "seed-curves") / f"{args.agent}.png")
    print(f"wrote {out} ({len(curves)} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
