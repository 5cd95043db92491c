"""The tables of README.md in this folder, from the committed files: run from the repository root,
``python envs/Hopper-v4/research/dt-medium-replay-lr/summarise.py``.

Held-out curves: lr 3e-4 from the seeds' cards (the designated ``dt-medium-replay`` is seed 0), lr 1e-4 from the
runs' ``log.csv`` kept here. Final weights on seeds 1000-1099: the mean over seeds of each seed's mean
D4RL-normalised score, with the stratified bootstrap of :func:`seqpolicy.evaluation.aggregate.across_seeds`."""

import csv
import json
from pathlib import Path

from seqpolicy.evaluation.aggregate import across_seeds
from seqpolicy.evaluation.scores import d4rl_normalize, d4rl_reference

HERE = Path(__file__).parent
HOPPER = HERE.parents[1]


def curves() -> list[tuple[str, int, list[float]]]:
    rows = []
    for seed in range(5):
        card = HOPPER / ("dt-medium-replay" if seed == 0 else f"seeds/dt-medium-replay/{seed}") / "card.json"
        rows.append(("3e-4", seed, [p["return"] for p in json.loads(card.read_text())["held_out_curve"]["points"]]))
    for seed in range(5):
        with open(HERE / f"lr1e-4-seed{seed}-log.csv") as f:
            rows.append(("1e-4", seed, [float(r["eval/return"]) for r in csv.DictReader(f)
                                        if r["eval/return"] and int(r["step"]) > 0]))
    return rows


def main() -> None:
    print("| lr | seed | held-out returns every 2500 steps | last | min | evaluations below 300 |")
    print("|---|---|---|---|---|---|")
    for lr, seed, c in curves():
        print(f"| {lr} | {seed} | {', '.join(str(round(x)) for x in c)} | {round(c[-1])} | {round(min(c))} | "
              f"{sum(x < 300 for x in c)} of {len(c)} |")
    reference = d4rl_reference("Hopper-v4")
    for lr in ("3e-4", "1e-4"):
        per_seed = {}
        for seed in range(5):
            result = json.loads((HERE / f"heldout-lr{lr}-seed{seed}.json").read_text())["evaluation"]
            per_seed[seed] = [float(d4rl_normalize(r, reference)) for r in result["returns"]]
        s = across_seeds(per_seed)
        print(f"lr {lr}: {s.mean:.1f} ({s.ci[0]:.1f} to {s.ci[1]:.1f}); seeds "
              f"{', '.join(f'{m:.1f}' for m in s.seed_means)}")


if __name__ == "__main__":
    main()
