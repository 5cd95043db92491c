"""Does bf16 autocast learn what fp32 learns? The same Hopper-v4 runs in both precisions, side by side.

1. DT: ``seqpolicy-train dt --preset cpu`` on ``seqpolicy/hopper-v4/medium-v0`` (same seed), once with
   ``--precision fp32`` and once with ``--precision bf16``; each final agent plays 20 held-out episodes (seeds
   1000-1019, never the test seeds 0-99). Pass: the bf16 mean lies within the fp32 run's 95% CI.
2. TT: ``--preset cpu`` for ``--tt-steps`` steps in each precision on 90% of the medium episodes; the loss on
   windows of the other 10% (eval mode, fp32, the same windows for both). Pass: within 2% of each other.

Run:  python benchmarks/precision_check.py --out ~/runs/precision [--tt-steps 1500] [--threads 1]
Run folders go under --out (resumable: a finished run is reused); the summary is printed and written to
--out/summary.json. About 1 h on one thread of this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

DATASET = "seqpolicy/hopper-v4/medium-v0"
ENV = "Hopper-v4"


def run_dt(out: Path, precision: str) -> dict:
    from seqpolicy.agents.dt import DecisionTransformerAgent
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.training.dt import PRESETS, train_dt

    run = out / f"dt-{precision}"
    t0 = time.perf_counter()
    if (run / "agent").is_dir():
        agent = DecisionTransformerAgent.load(run / "agent")
    else:
        resume = (run / "checkpoint").is_dir()
        agent = train_dt(DATASET, PRESETS["cpu"], env_id=ENV, run_dir=run, resume=resume, progress=False,
                         precision=precision, device="cpu")
    train_s = time.perf_counter() - t0
    result = evaluate(agent, ENV, n_episodes=20, seed=1000, n_envs=10)
    return {"precision": agent.info.get("precision"), "train_steps": agent.info.get("train_steps"),
            "train_wall_time_s": agent.info.get("train_wall_time_s"), "this_call_s": round(train_s, 1),
            "mean": float(result.mean), "ci95": [float(c) for c in result.ci95],
            "returns": [float(r) for r in result.returns]}


def held_out_split(seed: int = 0):
    from seqpolicy.data.sources import load_trajectories

    data = load_trajectories(DATASET, env_id=ENV)
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = max(len(data) // 10, 1)
    return data.subset(sorted(order[n_test:])), data.subset(sorted(order[:n_test]))


def tt_held_out_loss(agent, test, n_windows: int = 2048, seed: int = 0) -> float:
    """Mean TT loss (eval mode, fp32) over windows of the held-out episodes, drawn with a fixed seed."""
    from seqpolicy.agents.tt.tokens import SequenceSampler, joined_rows

    cfg = agent.info["train_config"]
    rows = joined_rows(test, cfg["discount"], cfg["termination_penalty"])
    sampler = SequenceSampler(rows, agent.discretizer, cfg["seq_transitions"], 1000, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    model = agent.model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(n_windows // 256):
            x, y, mask = sampler.sample(256, g)
            total += float(model.loss(x, y, mask))
    return total / (n_windows // 256)


def run_tt(out: Path, precision: str, steps: int, train, test) -> dict:
    from seqpolicy.agents.tt.agent import TrajectoryTransformerAgent
    from seqpolicy.training.tt import PRESETS, train_tt

    run = out / f"tt-{precision}-{steps}"
    if (run / "agent").is_dir():
        agent = TrajectoryTransformerAgent.load(run / "agent")
    else:
        resume = (run / "checkpoint").is_dir()
        agent = train_tt(train, PRESETS["cpu"], env_id=ENV, run_dir=run, resume=resume, progress=False,
                         precision=precision, device="cpu", max_steps=steps, checkpoint_every=250)
    return {"precision": agent.info.get("precision"), "train_steps": agent.info.get("train_steps"),
            "train_wall_time_s": agent.info.get("train_wall_time_s"),
            "held_out_loss": tt_held_out_loss(agent, test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the run folders and summary.json")
    parser.add_argument("--tt-steps", type=int, default=1500, help="TT training steps per precision")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--only", choices=["dt", "tt"], default=None, help="run one half only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.update({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                    "torch": torch.__version__})
    if args.only in (None, "dt"):
        dt = {p: run_dt(out, p) for p in ("fp32", "bf16")}
        lo, hi = dt["fp32"]["ci95"]
        dt["bf16_mean_within_fp32_ci"] = bool(lo <= dt["bf16"]["mean"] <= hi)
        summary["dt"] = dt
        summary_path.write_text(json.dumps(summary, indent=2))
        print(f"DT fp32 {dt['fp32']['mean']:.1f} (CI {lo:.1f}-{hi:.1f}), bf16 {dt['bf16']['mean']:.1f} "
              f"(CI {dt['bf16']['ci95'][0]:.1f}-{dt['bf16']['ci95'][1]:.1f}); within: {dt['bf16_mean_within_fp32_ci']}")
    if args.only in (None, "tt"):
        train, test = held_out_split()
        tt = {p: run_tt(out, p, args.tt_steps, train, test) for p in ("fp32", "bf16")}
        rel = abs(tt["bf16"]["held_out_loss"] - tt["fp32"]["held_out_loss"]) / tt["fp32"]["held_out_loss"]
        tt["relative_difference"] = rel
        summary["tt"] = tt
        summary_path.write_text(json.dumps(summary, indent=2))
        print(f"TT held-out loss after {args.tt_steps} steps: fp32 {tt['fp32']['held_out_loss']:.4f}, "
              f"bf16 {tt['bf16']['held_out_loss']:.4f} ({rel:.2%} apart)")


if __name__ == "__main__":
    main()
