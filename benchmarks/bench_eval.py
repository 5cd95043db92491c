"""Evaluation and video speed.

1. Env steps per second of ``seqpolicy.evaluate`` for a Decision Transformer agent (paper size: H=128,
   3 layers, 1 head, K=20; untrained weights, speed does not depend on them) on Hopper-v4: the single-env loop
   against 8 envs (sync and async vector envs). Episodes are fixed at --episode-steps steps
   (``terminate_when_unhealthy=False``) so every configuration runs exactly the same env steps.
2. Seconds to record one 1000-step Hopper-v4 episode (random agent, ``terminate_when_unhealthy=False``) to mp4
   at the default video size (480x480), overlay on, headless.

Run:  python benchmarks/bench_eval.py [--episodes 16] [--episode-steps 200] [--threads 1] [--json out.json]
      python benchmarks/bench_eval.py --skip-eval --fast-render   # video only, no shadows/reflections
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=".*is out of date.*")


def dt_agent(env_id: str):
    import gymnasium as gym
    import torch

    from seqpolicy.agents.dt import DecisionTransformerAgent
    from seqpolicy.models import DecisionTransformer, DTConfig

    env = gym.make(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    torch.manual_seed(0)
    model = DecisionTransformer(DTConfig(state_dim=obs_dim, act_dim=act_dim, hidden_size=128, max_ep_len=1000))
    return DecisionTransformerAgent(model, env.observation_space, env.action_space, state_mean=np.zeros(obs_dim),
                                    state_std=np.ones(obs_dim), target_return=3600.0, context_length=20,
                                    device="cpu")


def bench_eval(args) -> dict:
    from seqpolicy.evaluation.evaluate import evaluate

    agent = dt_agent("Hopper-v4")
    kwargs = dict(env_kwargs={"terminate_when_unhealthy": False}, max_episode_steps=args.episode_steps)
    evaluate(agent, "Hopper-v4", 1, seed=0, **kwargs)  # warm-up (imports, first forward)
    rows = {}
    for name, n_envs, vec in (("single env", 1, "sync"), ("8 envs sync", 8, "sync"), ("8 envs async", 8, "async")):
        r = evaluate(agent, "Hopper-v4", args.episodes, seed=0, n_envs=n_envs, vectorization=vec, **kwargs)
        rows[name] = {"env_steps": r.env_steps, "seconds": r.wall_time_s, "steps_per_s": r.steps_per_second,
                      "mean_return": r.mean}
        print(f"{name:14s} {r.env_steps} steps in {r.wall_time_s:6.2f} s = {r.steps_per_second:7.0f} steps/s")
    base = rows["single env"]["steps_per_s"]
    for row in rows.values():
        row["speedup"] = row["steps_per_s"] / base
    same = rows["single env"]["mean_return"], rows["8 envs sync"]["mean_return"]
    print(f"speed-up 8 envs sync x{rows['8 envs sync']['speedup']:.1f}, async x{rows['8 envs async']['speedup']:.1f}"
          f"; mean return single {same[0]:.3f} vs vector {same[1]:.3f}")
    return rows


def bench_video(args) -> dict:
    import gymnasium as gym

    import seqpolicy
    from seqpolicy.evaluation.video import record_video, setup_headless, video_stats

    backend = setup_headless()
    env = gym.make("Hopper-v4")
    agent = seqpolicy.RandomAgent(env.observation_space, env.action_space)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        (info,) = record_video(agent, "Hopper-v4", tmp, seed=0, size=args.video_size, fast=args.fast_render,
                               env_kwargs={"terminate_when_unhealthy": False}, max_episode_steps=1000)
        seconds = time.perf_counter() - start
        stats = video_stats(info.path)
        size_mb = os.path.getsize(info.path) / 1e6
    row = {"backend": backend or os.environ.get("MUJOCO_GL"), "size": list(args.video_size), "steps": 1000,
           "fast_render": args.fast_render,
           "frames": stats["frames"], "blank_frames": stats["blank_frames"], "seconds": seconds,
           "frames_per_s": stats["frames"] / seconds, "file_mb": size_mb}
    print(f"video {args.video_size[0]}x{args.video_size[1]} ({row['backend']}, fast_render={args.fast_render}): "
          f"{stats['frames']} frames in "
          f"{seconds:.1f} s = {row['frames_per_s']:.1f} frames/s, {size_mb:.2f} MB, blank {stats['blank_frames']}")
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--episode-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--video-size", default="480x480")
    p.add_argument("--fast-render", action="store_true", help="no MuJoCo shadows/reflections")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--skip-video", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    args.video_size = tuple(int(v) for v in args.video_size.split("x"))
    import torch

    torch.set_num_threads(args.threads)
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "load_avg_start": os.getloadavg(), "torch_threads": args.threads,
                       "python": platform.python_version(), "torch": torch.__version__}}
    if not args.skip_eval:
        out["eval"] = bench_eval(args)
    if not args.skip_video:
        out["video"] = bench_video(args)
    out["machine"]["load_avg_end"] = os.getloadavg()
    print(f"load average start {out['machine']['load_avg_start']}, end {out['machine']['load_avg_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
