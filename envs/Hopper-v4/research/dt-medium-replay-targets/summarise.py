"""The table and chart of README.md in this folder, from the committed sweeps: run from the repository root,
``python envs/Hopper-v4/research/dt-medium-replay-targets/summarise.py`` (writes ``targets.png`` here).

Each ``seed-<N>.json`` is ``seqpolicy-calibrate`` on training seed N's final weights of ``dt-medium-replay``
(seed 0: the designated folder), 20 episodes per target on the held-out seeds 20000-20019; nothing was chosen by
them. The test score (seeds 0-99, target 3600) comes from ``results/seeds/dt-medium-replay-<N>.json`` (seed 0:
``results/seeds/dt-medium-replay-0.json`` too)."""

import json
from pathlib import Path

HERE = Path(__file__).parent
HOPPER = HERE.parents[1]
DATA = json.loads((HOPPER / "datasets" / "medium-replay.json").read_text())["return"]


def sweeps() -> dict[int, list[dict]]:
    return {int(f.stem.split("-")[1]): json.loads(f.read_text())["points"]
            for f in sorted(HERE.glob("seed-*.json"), key=lambda f: int(f.stem.split("-")[1]))}


def test_return(seed: int) -> float:
    doc = json.loads((HOPPER / "results" / "seeds" / f"dt-medium-replay-{seed}.json").read_text())
    return doc["across_seeds"]["return"]["mean"]


def main() -> None:
    runs = sweeps()
    targets = [p["target"] for p in next(iter(runs.values()))]
    print("| training seed | " + " | ".join(f"target {t:g}" for t in targets) + " | test, target 3600 |")
    print("|---" * (len(targets) + 2) + "|")
    for seed, points in runs.items():
        print(f"| {seed} | " + " | ".join(f"{p['mean']:.0f}" for p in points) + f" | {test_return(seed):.0f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for seed, points in runs.items():
        ax.plot(targets, [p["mean"] for p in points], marker="o", label=f"seed {seed}")
    ax.axhline(DATA["mean"], color="gray", linestyle="--", label=f"data mean ({DATA['mean']:.0f})")
    ax.axvline(DATA["max"], color="gray", linestyle=":", label=f"data best ({DATA['max']:.0f})")
    ax.plot(targets, targets, color="black", linewidth=0.8, label="achieved = target")
    ax.set_ylim(0, max(max(p["mean"] for p in pts) for pts in runs.values()) * 1.15)
    ax.set_xlabel("target return")
    ax.set_ylabel("achieved return (20 held-out episodes)")
    ax.set_title("Hopper-v4 dt-medium-replay: final weights of each training seed")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(HERE / "targets.png", dpi=100)


if __name__ == "__main__":
    main()
