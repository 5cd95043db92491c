"""Training speed: ``seqpolicy-train``'s own loop against a plain loop over transformers' models, side by side.

For each model and preset (DT ``paper`` and ``cpu``, TT ``paper`` and ``cpu``, at Hopper dimensions: 11
observation and 3 action dimensions, 1000-step episodes), this measures in one run:

- ``ours``: steps/s of ``seqpolicy.train_dt`` / ``train_tt`` (the code ``seqpolicy-train dt|tt`` runs: sampler,
  micro-batches, autocast, fused AdamW, clipping, scheduler, logging) with ``precision=fp32`` and ``bf16``;
- ``hf``: steps/s of a plain PyTorch loop (random batches of the same shapes, AdamW, gradient clipping) over
  transformers' ``DecisionTransformerModel`` / ``TrajectoryTransformerModel`` in fp32, with the same weights
  shapes and dropout;
- the machine's matmul peak, fp32 and bf16, at the GEMM shapes of each step (the best of a few shapes), and
  the FLOPs of one step (forward x 3), so each speed is also reported as GFLOP/s and a fraction of the peak.

Every measurement runs in its own process (no allocator or thread settings leak between them), with
``--threads`` torch threads, and ``ours``/``hf`` alternate so that load on the machine hits both.

Run:  python benchmarks/bench_train.py [--threads 1] [--models dt:paper dt:cpu tt:paper tt:cpu] [--json out.json]
Needs the test extra (transformers < 5) for the ``hf`` rows. The TT paper preset takes ~1 min per row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

OBS_DIM, ACT_DIM, EP_LEN = 11, 3, 1000


# -- the step's arithmetic -------------------------------------------------------------------------------
def step_flops(model: str, cfg) -> tuple[float, list[tuple[int, int, int]]]:
    """FLOPs of one training step (forward x 3: the backward costs twice the forward) and its main GEMMs."""
    if model == "dt":
        b, n, h, layers = cfg.batch_size, 3 * cfg.context_length, cfg.hidden_size, cfg.n_layer
        per_layer = 24 * n * h * h + 4 * n * n * h  # q/k/v/out and MLP linears; QK^T and PV
        io = 2 * cfg.context_length * h * (OBS_DIM + ACT_DIM + 1) * 2  # embeddings in, prediction heads out
        gemms = [(b * n, h, 3 * h), (b * n, h, 4 * h), (b * n, 4 * h, h)]
        return 3.0 * b * (layers * per_layer + io), gemms
    t = OBS_DIM + ACT_DIM + 2
    b, n, e, layers = cfg.batch_size, cfg.seq_transitions * t - 1, cfg.n_embd, cfg.n_layer
    per_layer = 24 * n * e * e + 4 * n * n * e
    head = 2 * n * e * (cfg.n_bins + 1)
    gemms = [(b * n, e, 3 * e), (b * n, e, 4 * e), (b * n, 4 * e, e)]
    return 3.0 * b * (layers * per_layer + head), gemms


def matmul_peak(gemms: list[tuple[int, int, int]], dtype_name: str, seconds: float = 1.0) -> float:
    """Best GFLOP/s of ``torch.mm`` over the given (m, k, n) shapes in this dtype."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    best = 0.0
    for m, k, n in gemms:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        out = torch.empty(m, n, dtype=dtype)
        torch.mm(a, b, out=out)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / len(gemms):
            torch.mm(a, b, out=out)
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9)
    return best


# -- one measurement (in a subprocess) --------------------------------------------------------------------
def synthetic_data(n_episodes: int, seed: int = 0):
    import gymnasium as gym
    import numpy as np

    from seqpolicy.data.trajectories import Episode, Trajectories

    rng = np.random.default_rng(seed)
    eps = [Episode(rng.normal(size=(EP_LEN, OBS_DIM)), rng.uniform(-1, 1, (EP_LEN, ACT_DIM)), rng.normal(size=EP_LEN))
           for _ in range(n_episodes)]
    box = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    return Trajectories(eps, observation_space=box, action_space=gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32))


def config_of(model: str, preset: str):
    if model == "dt":
        from seqpolicy.training.dt import PRESETS
    else:
        from seqpolicy.training.tt import PRESETS
    return PRESETS[preset]


def time_ours(model: str, preset: str, precision: str, steps: int) -> dict:
    """Steps/s of the trainer's own loop over ``steps`` steps, after as many warm-up steps (from log.csv).

    ``precision="before"``: the seqpolicy found first on PYTHONPATH is an earlier checkout (``--before``),
    which has no precision setting; it trains as it did (fp32)."""
    import csv

    from seqpolicy.training.dt import train_dt
    from seqpolicy.training.tt import train_tt

    train = train_dt if model == "dt" else train_tt
    with tempfile.TemporaryDirectory() as tmp:
        extra = {} if precision == "before" else {"precision": precision}
        agent = train(synthetic_data(50), config_of(model, preset), run_dir=tmp, progress=False, eval_every=0,
                      checkpoint_every=0, log_every=steps, max_steps=2 * steps, device="cpu", **extra)
        with open(os.path.join(tmp, "log.csv")) as f:
            rows = list(csv.DictReader(f))
    return {"steps_per_s": float(rows[1]["train/steps_per_s"]), "precision": agent.info.get("precision", "fp32"),
            "micro_batches": agent.info.get("micro_batches", 1)}


def time_hf(model: str, preset: str, steps: int) -> dict:
    """Steps/s of a plain fp32 loop over transformers' model: random batches of the trainer's shapes."""
    import torch
    import transformers

    warnings.filterwarnings("ignore")
    cfg = config_of(model, preset)
    g = torch.Generator().manual_seed(0)
    if model == "dt":
        net = transformers.DecisionTransformerModel(transformers.DecisionTransformerConfig(
            state_dim=OBS_DIM, act_dim=ACT_DIM, hidden_size=cfg.hidden_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
            max_ep_len=EP_LEN, activation_function=cfg.activation, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        b, k = cfg.batch_size, cfg.context_length

        def loss_of_batch():
            s = torch.randn(b, k, OBS_DIM, generator=g)
            a = torch.rand(b, k, ACT_DIM, generator=g) * 2 - 1
            r = torch.randn(b, k, 1, generator=g)
            ts = torch.randint(0, EP_LEN, (b, k), generator=g)
            m = torch.ones(b, k, dtype=torch.long)
            m[: b // 8, : k // 4] = 0  # some left padding, as sampled windows have
            _, pred, _ = net(states=s, actions=a, returns_to_go=r, timesteps=ts, attention_mask=m, return_dict=False)
            return ((pred - a) ** 2)[m.bool()].mean()
    else:
        t = OBS_DIM + ACT_DIM + 2
        n = cfg.seq_transitions * t - 1
        net = transformers.TrajectoryTransformerModel(transformers.TrajectoryTransformerConfig(
            vocab_size=cfg.n_bins, observation_dim=OBS_DIM, action_dim=ACT_DIM, transition_dim=t, block_size=n,
            n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, embd_pdrop=cfg.dropout,
            resid_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, action_weight=cfg.action_weight))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
        b = cfg.batch_size

        def loss_of_batch():
            x = torch.randint(0, cfg.n_bins, (b, n), generator=g)
            y = torch.randint(0, cfg.n_bins, (b, n), generator=g)
            m = torch.ones(b, n)
            return net(trajectories=x, targets=y, attention_mask=m, return_dict=True).loss

    net.train()

    def one():
        loss = loss_of_batch()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    for _ in range(min(steps, 3)):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return {"steps_per_s": steps / (time.perf_counter() - t0), "precision": "fp32"}


def measure_one(spec: str, threads: int, steps: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    model, preset, who, precision = spec.split(":")
    cfg = config_of(model, preset)
    flops, gemms = step_flops(model, cfg)
    out = time_hf(model, preset, steps) if who == "hf" else time_ours(model, preset, precision, steps)
    peak = matmul_peak(gemms, out["precision"])
    gflops = flops * out["steps_per_s"] / 1e9
    return {**out, "spec": spec, "threads": threads, "gflop_per_step": flops / 1e9, "gflop_per_s": gflops,
            "matmul_peak_gflop_per_s": peak, "fraction_of_peak": gflops / peak}


# -- orchestration ------------------------------------------------------------------------------------------
def run_in_subprocess(spec: str, threads: int, steps: int, before: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if ":before:" in spec:  # the earlier checkout's seqpolicy first on the path
        env["PYTHONPATH"] = os.pathsep.join([before, env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, __file__, "--one", spec, "--threads", str(threads), "--steps", str(steps)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


DEFAULT_STEPS = {"dt:paper": 20, "dt:cpu": 30, "tt:paper": 3, "tt:cpu": 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_STEPS), help="model:preset pairs to measure")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads (one run per value)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default: per model)")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers rows")
    parser.add_argument("--before", default=None, metavar="CHECKOUT",
                        help="also time an earlier source checkout's trainer (e.g. a `git worktree add /tmp/old "
                             "5ed3cbc`), the 'before' rows")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a single measurement, in a subprocess
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.threads[0], args.steps)))
        return

    import torch

    rows = []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}")
    print("| model | preset | threads | loop | precision | micro-batches | steps/s | GFLOP/step | GFLOP/s | "
          "matmul peak (GFLOP/s, same dtype) | fraction of peak | speed-up vs hf | vs before |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        for pair in args.models:
            steps = args.steps or DEFAULT_STEPS.get(pair, 10)
            specs = [f"{pair}:ours:fp32", f"{pair}:ours:bf16"]
            if not args.no_hf:
                specs.insert(1, f"{pair}:hf:fp32")  # between ours, so load on the machine hits both
            if args.before:
                specs.insert(0, f"{pair}:before:before")
            results = [run_in_subprocess(s, threads, steps, args.before) for s in specs]
            hf = next((r for r in results if ":hf:" in r["spec"]), None)
            old = next((r for r in results if ":before:" in r["spec"]), None)
            for r in results:
                model, preset, who, _ = r["spec"].split(":")
                ratio = r["steps_per_s"] / hf["steps_per_s"] if hf else float("nan")
                r["speedup_vs_hf"] = ratio
                r["speedup_vs_before"] = r["steps_per_s"] / old["steps_per_s"] if old else float("nan")
                print(f"| {model} | {preset} | {threads} | {who} | {r['precision']} | {r.get('micro_batches', '-')} "
                      f"| {r['steps_per_s']:.2f} | {r['gflop_per_step']:.1f} | {r['gflop_per_s']:.0f} | "
                      f"{r['matmul_peak_gflop_per_s']:.0f} | {r['fraction_of_peak']:.0%} | {ratio:.2f}x | "
                      f"{r['speedup_vs_before']:.2f}x |", flush=True)
                rows.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
