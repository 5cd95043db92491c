"""One prepared GPU run: seqpolicy's speeds on CUDA and the CUDA parity tests, in under 8 minutes.

On the first CUDA device, at Hopper dimensions (11 observation and 3 action dimensions, 1000-step episodes):

1. training steps/s of the DT and TT ``paper`` presets: ``seqpolicy.train_dt`` / ``train_tt`` (the loop
   ``seqpolicy-train`` runs) on synthetic data, fp32 and ``auto`` precision (bf16 autocast where the GPU has
   it), from ``log.csv`` over the second half of the run; with GFLOP/s against the GPU's ``torch.mm`` peak in
   the same dtype (FLOPs as ``bench_train.py`` counts them);
2. DT ``act()`` latency on CUDA (the paper model, K=20): batch 1, per env at batch 64, and the authors'
   evaluation loop with transformers' model on the same GPU;
3. TT plan latency on CUDA: the paper model with the ``paper`` planner (beam 128, horizon 15), cached, per plan
   (one env step), and the authors' no-cache loop for a couple of plans;
4. the CUDA parity tests (``pytest tests/test_cuda.py``): models, agents and training steps compute on the
   GPU what they compute on the CPU.

Sections run in that order and each is skipped, saying so, once ``--budget-s`` seconds have passed.

    python benchmarks/gpu.py --json gpu.json          # on a machine with a CUDA GPU
    python benchmarks/gpu.py --smoke --device cpu     # the same code paths, tiny, on the CPU (a dry run)

Without CUDA (and without ``--device cpu``) it says so and exits with status 2, measuring nothing.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*is out of date.*")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmarks: their models, data and FLOP counts

import bench_dt  # noqa: E402
import bench_train  # noqa: E402
import bench_tt  # noqa: E402

START = time.perf_counter()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gpu_mm_peak(device: str, dtype: torch.dtype, size: int = 4096, seconds: float = 1.0) -> float:
    """GFLOP/s of a size^3 ``torch.mm`` in ``dtype`` on ``device`` (TF32 off for fp32, as in training)."""
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            torch.mm(a, b, out=out)
        sync(device)
        reps += 10
    return 2 * size**3 * reps / (time.perf_counter() - t0) / 1e9


# -- 1. training -------------------------------------------------------------------------------------------
def train_speed(model: str, preset: str, precision: str, steps: int, device: str) -> dict:
    """Steps/s of the trainer's loop over ``steps`` steps after as many warm-up steps (its log.csv)."""
    from seqpolicy.training.dt import train_dt
    from seqpolicy.training.tt import train_tt

    train = train_dt if model == "dt" else train_tt
    with tempfile.TemporaryDirectory() as tmp:
        agent = train(bench_train.synthetic_data(50), bench_train.config_of(model, preset), run_dir=tmp,
                      progress=False, eval_every=0, checkpoint_every=0, log_every=steps, max_steps=2 * steps,
                      device=device, precision=precision)
        with open(os.path.join(tmp, "log.csv")) as f:
            rows = list(csv.DictReader(f))
    flops, _ = bench_train.step_flops(model, bench_train.config_of(model, preset))
    used = agent.info.get("precision", precision)
    sps = float(rows[-1]["train/steps_per_s"])
    return {"model": model, "preset": preset, "precision": used, "steps_per_s": sps,
            "gflop_per_step": flops / 1e9, "gflop_per_s": flops * sps / 1e9}


# -- 2. DT acting ------------------------------------------------------------------------------------------
def dt_act(steps: int, device: str) -> dict:
    ours, hf = bench_dt.make_models()
    agent = bench_dt.make_agent(copy.deepcopy(ours), device=device)
    bench_dt.time_ours(agent, 30, 1)  # warm-up (CUDA context, kernels)
    out = {"act_batch1_median_ms": float(np.median(bench_dt.time_ours(agent, steps, 1)[0]) * 1e3)}
    lat64 = bench_dt.time_ours(agent, max(steps // 5, 20), 64)[0]
    out["act_batch64_per_env_ms"] = float(np.median(lat64) * 1e3) / 64
    if hf is not None:
        hf = hf.to(device)
        bench_dt.time_authors_loop(hf, 30, device)
        out["authors_loop_hf_median_ms"] = float(np.median(bench_dt.time_authors_loop(hf, steps, device)) * 1e3)
        out["speedup_vs_authors_loop"] = out["authors_loop_hf_median_ms"] / out["act_batch1_median_ms"]
    return out


# -- 3. TT planning ----------------------------------------------------------------------------------------
def tt_plan(size: str, planner: str, plans: int, uncached_plans: int, device: str) -> dict:
    from seqpolicy.agents.tt import Discretizer, PlannerConfig, beam_plan

    model = bench_tt.make_model(size).to(device)
    disc = Discretizer.fit(np.random.default_rng(0).normal(size=(20_000, bench_tt.T)), bench_tt.N)
    g = torch.Generator().manual_seed(1)
    prefixes = torch.randint(0, bench_tt.N, (plans + 1, 5 * bench_tt.T + bench_tt.OBS), generator=g).to(device)
    out = {"model": size, "planner": planner}
    for name, use_cache, n in (("cached", True, plans), ("no_cache", False, uncached_plans)):
        if n == 0:
            continue
        cfg = PlannerConfig.preset(planner, use_cache=use_cache)
        gens = [torch.Generator(device=device).manual_seed(0)]
        beam_plan(model, disc, prefixes[:1], cfg, gens)  # warm-up
        sync(device)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            beam_plan(model, disc, prefixes[i + 1:i + 2], cfg, gens)
            sync(device)
            times.append(time.perf_counter() - t0)
        out[f"{name}_ms_per_plan"] = float(np.median(times) * 1e3)
    if "no_cache_ms_per_plan" in out:
        out["cache_speedup"] = out["no_cache_ms_per_plan"] / out["cached_ms_per_plan"]
    return out


# -- 4. parity tests ---------------------------------------------------------------------------------------
def parity_tests(timeout: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"],
                          cwd=HERE.parent, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    lines = proc.stdout.strip().splitlines()
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else proc.stderr[-500:],
            "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (default cuda; cpu only for a dry run)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny step counts and the cpu presets: checks the code paths, measures nothing useful")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="skip the sections not started after this many seconds (default 450: the parity "
                             "tests then still fit in 8 minutes)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False): "
              "nothing was measured. Run it on a machine with a GPU and a CUDA build of torch, or try the code "
              "paths on the CPU with --smoke --device cpu.", file=sys.stderr)
        return 2
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (torch's default; stated, not assumed)
    torch.set_num_threads(1)  # the host side of acting, as seqpolicy acts
    results: dict = {"device": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.machine(),
                     "torch": torch.__version__, "cuda": torch.version.cuda, "smoke": args.smoke, "sections": {}}
    presets = "cpu" if args.smoke else "paper"
    plan = [  # (name, function, arguments)
        ("train", lambda: [train_speed(m, presets, p, steps, device)
                           for m, steps in (("dt", 2 if args.smoke else 300), ("tt", 2 if args.smoke else 100))
                           for p in ("fp32", "auto")]),
        ("mm_peak", lambda: {"fp32": gpu_mm_peak(device, torch.float32, 512 if args.smoke else 4096),
                             "bf16": gpu_mm_peak(device, torch.bfloat16, 512 if args.smoke else 4096)}),
        ("dt_act", lambda: dt_act(20 if args.smoke else 300, device)),
        ("tt_plan", lambda: tt_plan("cpu" if args.smoke else "paper", presets, 1 if args.smoke else 10,
                                    1 if args.smoke else 2, device)),
        ("parity_tests", lambda: parity_tests(timeout=max(60.0, 470 - (time.perf_counter() - START)))),
    ]
    for name, run in plan:
        elapsed = time.perf_counter() - START
        if elapsed > args.budget_s and name != "parity_tests":
            results["sections"][name] = f"skipped: {elapsed:.0f} s had passed (--budget-s {args.budget_s:g})"
            print(f"{name}: skipped (budget)", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            results["sections"][name] = run()
        except Exception as e:  # one failing section must not cost the others' numbers
            results["sections"][name] = f"failed: {type(e).__name__}: {e}"
        print(f"{name} ({time.perf_counter() - t0:.0f} s): {json.dumps(results['sections'][name])}", flush=True)
    results["wall_s"] = time.perf_counter() - START

    sec = results["sections"]
    print(f"\n{results['device']}, torch {results['torch']} (CUDA {results['cuda']}), {results['wall_s']:.0f} s")
    if isinstance(sec.get("train"), list):
        peak = sec.get("mm_peak") if isinstance(sec.get("mm_peak"), dict) else {}
        print("\n| model | preset | precision | steps/s | GFLOP/step | GFLOP/s | of mm peak |")
        print("|---|---|---|---|---|---|---|")
        for r in sec["train"]:
            p = peak.get(r["precision"])
            frac = f"{r['gflop_per_s'] / p:.1%}" if p else "-"
            print(f"| {r['model']} | {r['preset']} | {r['precision']} | {r['steps_per_s']:.2f} | "
                  f"{r['gflop_per_step']:.1f} | {r['gflop_per_s']:.0f} | {frac} |")
    for name in ("dt_act", "tt_plan", "parity_tests"):
        print(f"{name}: {sec.get(name)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    tests = sec.get("parity_tests")
    return 0 if isinstance(tests, dict) and tests["returncode"] in (0, 5) else 1  # 5: all skipped (no CUDA)


if __name__ == "__main__":
    sys.exit(main())
