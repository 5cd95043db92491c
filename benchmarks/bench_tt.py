"""Trajectory Transformer planning speed: exact KV cache vs the authors' one-forward-per-token loop.

Both paths run side by side in one process on the same weights, prefixes and planner settings, at Hopper
dimensions (obs 11, act 3, T = 16, 100 bins, 5 context transitions). Reports per plan (one env step when
replanning every step; the cpu preset replans every 2nd step): latency, model
token positions run, tokens per second, achieved GFLOP/s (dense matmul FLOPs of those positions plus their
attention) against this machine's measured float32 matmul peak, and how often the two paths agree.
Then (``--episode``) times 1000 agent steps on real Hopper-v4 observations with the cached planner.

    python benchmarks/bench_tt.py                         # cpu model + cpu planner preset
    python benchmarks/bench_tt.py --model paper --planner paper --steps 1 --uncached-steps 1
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from seqpolicy.agents.tt import PRESETS, Discretizer, PlannerConfig, TrajectoryTransformerAgent, beam_plan
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig
from seqpolicy.training.tt import TTTrainConfig

OBS, ACT, N = 11, 3, 100
T = OBS + ACT + 2


def matmul_peak(threads: int, size: int = 1024, repeats: int = 20) -> float:
    """Best-of-3 float32 GFLOP/s of a size x size matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9)
    return best


def make_model(size: str, seed: int = 0) -> TrajectoryTransformer:
    cfg = TTTrainConfig.preset(size)
    preset = {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd}
    torch.manual_seed(seed)
    model = TrajectoryTransformer(TTConfig(observation_dim=OBS, action_dim=ACT, vocab_size=N, block_size=10 * T - 1,
                                           **preset)).eval()
    with torch.no_grad():  # peaked next-token distributions, like a trained model's
        model.pos_emb.normal_(0.0, 0.3)
        model.head.weight.normal_(0.0, 0.3)
    return model


def flops_per_position(model: TrajectoryTransformer, keys: float) -> float:
    """Forward FLOPs of one token position: q/k/v/proj/MLP matmuls, attention over ``keys`` keys, one head."""
    c = model.config
    e = c.n_embd
    return c.n_layer * (2 * 12 * e * e + 4 * e * keys) + 2 * e * (c.vocab_size + 1)


def run_path(model, disc, prefixes, cfg, steps, seed=0):
    """Plan ``steps`` env steps (one prefix each); returns seconds per step, token positions, plans."""
    plans, stats = [], {"tokens": 0}
    t0 = time.perf_counter()
    for i in range(steps):
        plan, _ = beam_plan(model, disc, prefixes[i:i + 1], cfg, [torch.Generator().manual_seed(seed + i)], stats)
        plans.append(plan[0])
    return (time.perf_counter() - t0) / steps, stats["tokens"] / steps, plans


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cpu", "paper"], default="cpu", help="model size (training preset)")
    p.add_argument("--planner", choices=["cpu", "paper"], default="cpu", help="planner preset")
    p.add_argument("--steps", type=int, default=10, help="env steps timed with the cache")
    p.add_argument("--uncached-steps", type=int, default=3, help="env steps timed without the cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--modes", default="sampling,greedy", help="comma-separated: sampling (the preset's "
                   "filters) and/or greedy (every token the most likely)")
    p.add_argument("--episode", action="store_true", help="also time 1000 agent steps on Hopper-v4")
    p.add_argument("--only-episode", action="store_true", help="skip the side-by-side comparison")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    peak = matmul_peak(args.threads)
    model = make_model(args.model)
    disc = Discretizer.fit(np.random.default_rng(0).normal(size=(20_000, T)), N)
    g = torch.Generator().manual_seed(1)
    prefixes = torch.randint(0, N, (max(args.steps, args.uncached_steps), 5 * T + OBS), generator=g)
    c = model.config
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s); measured matmul peak {peak:.1f} GFLOP/s")
    print(f"model: {args.model} ({c.n_layer} layers, width {c.n_embd}, {c.n_head} heads); planner preset "
          f"{args.planner}; Hopper dims (T={T}, N={N}, 5 context transitions)\n")

    rows = []
    modes = [] if args.only_episode else args.modes.split(",")
    for name, use_cache, steps in (("cached", True, args.steps), ("no cache", False, args.uncached_steps)):
        for mode in modes:
            greedy = PRESETS["greedy"] if mode == "greedy" else {}
            cfg = PlannerConfig.preset(args.planner, use_cache=use_cache, **greedy)
            sec, tokens, plans = run_path(model, disc, prefixes, cfg, steps)
            keys = cfg.max_context_transitions * T / 2 if use_cache else cfg.max_context_transitions * T * 0.9
            gflops = tokens * flops_per_position(model, keys) / sec / 1e9
            rows.append((name, mode, sec, tokens, tokens / sec, gflops, plans))
            print(f"{name:9s} {mode:8s}: {sec * 1000:9.1f} ms/step  {tokens:9.0f} positions/step  "
                  f"{tokens / sec:9.0f} tokens/s  {gflops:6.2f} GFLOP/s ({100 * gflops / peak:.0f}% of peak)",
                  flush=True)

    by = {(r[0], r[1]): r for r in rows}
    print("\n| path | search | latency per plan (= env step at plan_freq 1) | token positions per plan | tokens/s "
          "| GFLOP/s (% of peak) |")
    print("|---|---|---|---|---|---|")
    for name, mode, sec, tokens, tps, gf, _ in rows:
        pct = 100 * gf / peak
        print(f"| {name} | {mode} | {sec * 1000:.1f} ms | {tokens:.0f} | {tps:.0f} | {gf:.2f} ({pct:.0f}%) |")
    for mode in modes:
        cached, full = by[("cached", mode)], by[("no cache", mode)]
        n = min(len(cached[6]), len(full[6]))
        plans_same = sum(torch.equal(a, b) for a, b in zip(cached[6][:n], full[6][:n], strict=True))
        act_same = sum(torch.equal(a[0, OBS:OBS + ACT], b[0, OBS:OBS + ACT])
                       for a, b in zip(cached[6][:n], full[6][:n], strict=True))
        print(f"\n{mode}: speed-up {full[2] / cached[2]:.1f}x; identical plans {plans_same}/{n}, "
              f"identical first actions {act_same}/{n}")

    if args.episode or args.only_episode:
        import gymnasium as gym

        env = gym.make("Hopper-v4")
        agent = TrajectoryTransformerAgent(model, disc, env.observation_space, env.action_space,
                                           planner=args.planner, env_id="Hopper-v4")
        obs, _ = env.reset(seed=0)
        reward, resets = None, 0
        t0 = time.perf_counter()
        for _ in range(1000):
            action = agent.act(obs, reward)
            obs, reward, term, trunc, _ = env.step(action)
            if term or trunc:  # untrained weights fall quickly: restart the env but keep the agent's full
                obs, _ = env.reset()  # context, so every step costs what a step of a long episode costs
                resets += 1
        wall = time.perf_counter() - t0
        print(f"\nHopper-v4, 1000 agent steps with the cached {args.planner} planner: {wall:.1f} s "
              f"({wall:.0f} s <= 180 s: {wall <= 180}); the env restarted {resets} times, the agent's context never")


if __name__ == "__main__":
    main()
