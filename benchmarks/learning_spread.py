"""How far the learning tests' returns spread over training seeds, per precision, on this CPU.

The test suite's learning tests (``tests/test_dt_learning.py``, ``tests/test_tt_training.py``,
``tests/test_bc.py``) train one seed each on PointReach and assert a fraction of the scripted expert's return
over 20 episodes (seeds 0-19). bf16 rounds differently on AMX (Intel) and AVX512-BF16 (AMD) CPUs, so a bar set
on one kind can fail on the other. This script trains each test's recipe with several training seeds and both
precisions, and also a broken trainer (learning rate 1e-12: the initial weights), which a bar must still fail.
It prints the ratio to the expert for each run and writes them to ``--json``; set the bars below the lowest
working run and far above the broken one, and record the CPU kind with them.

    OMP_NUM_THREADS=1 python benchmarks/learning_spread.py --seeds 0 1 2 3 4 --json spread.json
    python benchmarks/learning_spread.py --tests tt --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

TOY = "seqpolicy/PointReach-v0"


def ratio_of(agent) -> float:
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.toy import expert_returns

    returns = evaluate(agent, TOY, n_episodes=20, seed=0, n_envs=20).returns
    return float(np.mean(returns) / expert_returns(20, seed=0).mean())


def train(test: str, seed: int, precision: str, broken: bool):
    """The recipe of the learning test ``test`` with training seed ``seed`` (lr 1e-12 when ``broken``)."""
    import seqpolicy
    from seqpolicy.toy import make_toy_dataset

    lr = {"learning_rate": 1e-12} if broken else {}  # lr 0 is refused by the configs
    if test == "dt":
        from seqpolicy.training.dt import PRESETS

        data = make_toy_dataset(n_episodes=300, seed=0)
        return seqpolicy.train_dt(data, PRESETS["pointreach"], env_id=TOY, eval_every=0, device="cpu",
                                  progress=False, precision=precision, seed=seed, **lr)
    if test == "tt":
        from seqpolicy.training.tt import TTTrainConfig, train_tt

        data = make_toy_dataset(200, seed=0, mix=(0.7, 0.3, 0.0))
        cfg = TTTrainConfig.preset("pointreach", eval_every=0, device="cpu", precision=precision, seed=seed, **lr)
        return train_tt(data, cfg, progress=False)
    if test == "bc":
        data = make_toy_dataset(n_episodes=100, seed=1, mix=(1.0, 0.0, 0.0))
        return seqpolicy.train_bc(data, env_id=TOY, max_steps=1500, eval_every=0, device="cpu", progress=False,
                                  precision=precision, seed=seed, **lr)
    raise ValueError(f"unknown test {test!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests", nargs="+", default=["dt", "bc", "tt"], choices=["dt", "bc", "tt"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from seqpolicy.common.threads import cpu_model, matmul_isa

    torch.set_num_threads(1)
    rows = []
    print(f"{cpu_model()} ({matmul_isa()}), torch {torch.__version__}, one thread", flush=True)
    for test in args.tests:
        runs = [(s, prec, False) for prec in args.precisions for s in args.seeds] + [(0, "fp32", True)]
        for seed, precision, broken in runs:
            t0 = time.perf_counter()
            ratio = ratio_of(train(test, seed, precision, broken))
            row = {"test": test, "seed": seed, "precision": precision, "broken": broken, "ratio": ratio,
                   "wall_s": time.perf_counter() - t0}
            rows.append(row)
            print(f"{test} seed {seed} {precision}{' broken (lr 1e-12)' if broken else ''}: {100 * ratio:.1f}% of the "
                  f"expert ({row['wall_s']:.0f} s)", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"cpu": cpu_model(), "matmul_isa": matmul_isa(), "torch": torch.__version__,
                               "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
