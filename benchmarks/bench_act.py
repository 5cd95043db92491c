"""Acting speed of the zoo's agents: per ``agent.act`` call, by intra-op threads, idle and beside another job.

For each agent (default: the Hopper-v4 zoo's ``dt`` and ``tt``) and each thread setting, one episode of Hopper-v4
from reset seed 2000 is run for ``--steps`` env steps (the agent reseeded with 0 each time, so every setting
sees the same observations until the float rounding of its threads makes a sampled TT plan differ) and the mean
seconds per ``act`` are reported. Settings: ``torch`` (torch's default intra-op thread count, what acting used
before seqpolicy pinned it) and ``1`` (seqpolicy's default), or the counts given with ``--threads``.

``--load`` repeats every measurement with a busy process (a pure-Python loop) on the machine, as when an
evaluation runs beside a training; ``--n-envs 1 10`` times batched planning (seconds per env step = per act
divided by the batch). Everything runs side by side in one process, so the ratios compare like with like.

    python benchmarks/bench_act.py                       # dt and tt, torch default vs 1 thread, idle
    python benchmarks/bench_act.py --load --json out.json
    python benchmarks/bench_act.py --agents tt --n-envs 1 10 --threads 1
    python benchmarks/bench_act.py --agents tt --threads 1 --runtimes torch onnxruntime

``--runtimes torch onnxruntime`` times a TT's planner on both runtimes (``seqpolicy.agents.tt.onnx_step``; the
onnxruntime one rounds differently, so its sampled plans drift from torch's after a few steps, and the
per-step costs compare like for like only on average). The matmul peaks at the end include onnxruntime's (MLAS)
when it is installed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", message=".*is out of date.*")


_machine = ["", ""]  # CPU model and matmul instructions, for the JSON


def _busy(stop) -> None:  # pragma: no cover - runs in a child process
    while not stop.is_set():
        sum(range(10_000))


def time_act(agent, env_id: str, n_envs: int, steps: int, threads: int, seed: int = 2000) -> dict:
    """Mean and median seconds per act() over ``steps`` env steps of ``n_envs`` envs (seeds seed, seed+1...)."""
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * n_envs,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = envs.reset(seed=[seed + i for i in range(n_envs)])
    agent.threads = threads  # seqpolicy's own setting; torch's global count too, for checkouts without it
    torch.set_num_threads(threads)
    agent.reset(seed=0)
    stats = getattr(agent, "stats", None)
    tokens0 = stats.get("tokens", 0) if isinstance(stats, dict) else None
    reward, times = None, []
    for _ in range(steps):
        t0 = time.perf_counter()
        action = agent.act(obs if n_envs > 1 else obs[0], reward)
        times.append(time.perf_counter() - t0)
        obs, rew, term, trunc, _ = envs.step(action if n_envs > 1 else action[None])
        ended = term | trunc
        reward = rew if n_envs > 1 else float(rew[0])
        if ended.any():
            agent.reset(envs=ended if n_envs > 1 else None)
            reward = rew if n_envs > 1 else None
    envs.close()
    out = {"mean_s": float(np.mean(times)), "median_s": float(np.median(times)), "steps": steps}
    if tokens0 is not None:  # TT: model token positions run per env step (the planner's stats)
        out["tokens_per_env_step"] = (agent.stats.get("tokens", 0) - tokens0) / (steps * n_envs)
    return out


def tt_flops_per_token(agent) -> float:
    """Matmul FLOPs of one TT token position: the blocks' linear layers and attention over a full window
    (an upper bound: early positions attend to fewer keys), plus the output head."""
    c = agent.model.config
    window = min(c.block_size, agent.planner.max_context_transitions * c.transition_dim - 1)
    per_layer = 2 * 12 * c.n_embd ** 2 + 2 * 2 * window * c.n_embd
    return c.n_layer * per_layer + 2 * c.n_embd * (c.vocab_size + 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper-v4")
    p.add_argument("--agents", nargs="+", default=["dt", "tt"], help="zoo names or agent folders")
    p.add_argument("--threads", nargs="+", default=["torch", "1"],
                   help="thread settings: 'torch' (torch's default count) or numbers (default: torch 1)")
    p.add_argument("--n-envs", nargs="+", type=int, default=[1])
    p.add_argument("--steps", type=int, default=36, help="env steps per measurement (default 36)")
    p.add_argument("--repeats", type=int, default=2, help="measurements per setting, interleaved (default 2)")
    p.add_argument("--load", action="store_true", help="also measure with a busy process on the machine")
    p.add_argument("--runtimes", nargs="+", default=["torch"], choices=["torch", "onnxruntime"],
                   help="TT agents: what runs the planner's model calls (default: torch)")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from seqpolicy.zoo import get_agent, is_agent_path

    try:
        from seqpolicy.common.threads import cpu_model, matmul_isa
    except ImportError:  # a checkout from before threads.py (the --before side of a comparison)
        def cpu_model() -> str:
            return platform.processor() or platform.machine()

        def matmul_isa() -> str:
            return "unknown"

    _machine[:] = [cpu_model(), matmul_isa()]
    default_threads = torch.get_num_threads()
    settings = [default_threads if t == "torch" else int(t) for t in args.threads]
    names = dict(zip(settings, args.threads, strict=True))
    print(f"{cpu_model()} ({matmul_isa()}), {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"torch's default threads {default_threads}, {platform.python_version()}, seqpolicy from {seqpolicy_path()}")
    rows = []
    loads = [False, True] if args.load else [False]
    variants = []  # (label, agent)
    for name in args.agents:
        for runtime in args.runtimes:
            if is_agent_path(name):
                from seqpolicy.agents.loading import load_agent
                agent = load_agent(name, device="cpu", runtime=runtime)
            else:
                agent = get_agent(args.env, name, device="cpu", runtime=runtime)
            label = name if len(args.runtimes) == 1 else f"{name} [{runtime}]"
            variants.append((label, agent))
    for name, agent in variants:
        for loaded in loads:
            stop = mp.Event()
            proc = mp.Process(target=_busy, args=(stop,), daemon=True) if loaded else None
            if proc is not None:
                proc.start()
                time.sleep(0.5)
            try:
                for n_envs in args.n_envs:
                    results = {t: [] for t in settings}
                    for _ in range(args.repeats):
                        for t in settings:
                            results[t].append(time_act(agent, args.env, n_envs, args.steps, t))
                    for t in settings:
                        mean = min(r["mean_s"] for r in results[t])  # best of the repeats
                        row = {"agent": name, "n_envs": n_envs, "threads": t, "setting": names[t],
                               "load": loaded, "ms_per_act": 1e3 * mean, "ms_per_env_step": 1e3 * mean / n_envs,
                               "all_means_ms": [1e3 * r["mean_s"] for r in results[t]]}
                        tokens = [r["tokens_per_env_step"] for r in results[t] if "tokens_per_env_step" in r]
                        if tokens:
                            flops = tt_flops_per_token(agent) * float(np.mean(tokens))
                            row.update(tokens_per_env_step=float(np.mean(tokens)), gflop_per_env_step=flops / 1e9,
                                       gflop_per_s=flops / (mean / n_envs) / 1e9)
                        rows.append(row)
                        if args.json:  # after every row: a long run stopped early keeps what it measured
                            _write(args.json, rows, default_threads, args.steps)
                        print(f"{name:>4} n_envs {n_envs:>2} threads {names[t]:>5} ({t}) "
                              f"{'+busy' if loaded else 'as is'}: {row['ms_per_act']:8.2f} ms per act, "
                              f"{row['ms_per_env_step']:8.2f} ms per env step "
                              f"(means of the repeats: {', '.join(f'{m:.2f}' for m in row['all_means_ms'])})",
                              flush=True)
                        if tokens:
                            print(f"       {row['tokens_per_env_step']:.0f} token positions per env step, "
                                  f"{row['gflop_per_env_step']:.2f} GFLOP, {row['gflop_per_s']:.1f} GFLOP/s",
                                  flush=True)
            finally:
                if proc is not None:
                    stop.set()
                    proc.join()
    torch.set_num_threads(1)
    from bench_train import matmul_peak  # benchmarks/ is on sys.path when this script runs

    shapes = ((1024, 1024, 1024), (32, 128, 384), (32, 128, 512), (32, 512, 128), (320, 128, 512))
    peaks = {f"{m}x{k}x{n} {dtype}": matmul_peak([(m, k, n)], dtype, seconds=0.3) for dtype in ("fp32", "bf16")
             for m, k, n in shapes}
    if "onnxruntime" in args.runtimes:
        from bench_dt import matmul_peak as fp32_peaks  # torch.mm and onnxruntime's MLAS, fp32

        for m, k, n in shapes:
            peaks[f"{m}x{k}x{n} fp32 onnxruntime"] = fp32_peaks([(m, k, n)], seconds=0.3).get("onnxruntime", 0.0)
    print("matmul peak, one thread, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    if args.json:
        _write(args.json, rows, default_threads, args.steps, peaks)


def _write(path: str, rows: list, default_threads: int, steps: int, peaks: dict | None = None) -> None:
    with open(path, "w") as f:
        json.dump({"cpu": _machine[0], "matmul_isa": _machine[1], "torch": torch.__version__,
                   "seqpolicy": seqpolicy_path(), "default_threads": default_threads, "steps": steps,
                   "load_average_at_end": os.getloadavg(), "matmul_peak_gflops": peaks, "rows": rows}, f, indent=1)


def seqpolicy_path() -> str:
    import seqpolicy

    return str(Path(seqpolicy.__file__).parent)


if __name__ == "__main__":
    main()
