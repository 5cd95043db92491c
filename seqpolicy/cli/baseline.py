"""seqpolicy-baseline: train Stable-Baselines3 baselines (SAC, TD3, PPO) to collect offline datasets from."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  # TD3 on Hopper-v4 with rl-zoo hyperparameters, checkpoints every 10k steps, replay buffer kept
  seqpolicy-baseline train --algo td3 --env Hopper-v4 --steps 1000000 --keep-replay \\
      --max-minutes 90 --out runs/hopper-td3

  # a quick smoke run on the toy env
  seqpolicy-baseline train --algo sac --env seqpolicy/PointReach-v0 --steps 2000 \\
      --checkpoint-every 1000 --set learning_starts=200 --out runs/pointreach-sac

  # list a run's checkpoints and their evaluation returns
  seqpolicy-baseline show runs/hopper-td3

The run folder holds SB3 zips (checkpoints/step_*.zip, final.zip), a JSON card per checkpoint with its
evaluation returns, run.json, and with --keep-replay replay.npz (every transition in order).
SB3 zips are pickle-based: load only zips you made yourself or trust.
"""


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r} (e.g. --set learning_starts=1000).")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqpolicy-baseline", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a baseline and save checkpoints with evaluation returns",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--algo", choices=["sac", "td3", "ppo"], default="td3")
    t.add_argument("--env", required=True, help="Gymnasium env id, e.g. Hopper-v4")
    t.add_argument("--steps", type=int, default=1_000_000, help="env steps to train (default 1e6)")
    t.add_argument("--out", required=True, help="run folder to write")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=10_000, help="env steps between checkpoints")
    t.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per checkpoint")
    t.add_argument("--keep-replay", action="store_true", help="write replay.npz (sac/td3), for medium-replay")
    t.add_argument("--max-minutes", type=float, default=None, help="stop gracefully and save after this long")
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an rl-zoo hyperparameter (repeatable), e.g. --set learning_rate=3e-4")
    t.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("show", help="print a run's status and checkpoint returns")
    s.add_argument("run", help="run folder")
    args = parser.parse_args(argv)

    from seqpolicy.training.baseline import BaselineConfig, load_run, train_baseline

    if args.command == "show":
        run = load_run(args.run)
        print(f"{run['config']['algo']} on {run['config']['env_id']}: {run['status']}, {run['steps']} steps, "
              f"{run['wall_s']:.0f} s")
        for c in run["checkpoints"]:
            print(f"  {c['zip']:<32} step {c['step']:>8}  eval return {c['eval_return_mean']:9.1f} "
                  f"± {c['eval_return_std']:.1f}")
        return 0
    try:
        cfg = BaselineConfig(algo=args.algo, env_id=args.env, steps=args.steps, seed=args.seed,
                             checkpoint_every=args.checkpoint_every, eval_episodes=args.eval_episodes,
                             keep_replay=args.keep_replay, max_minutes=args.max_minutes, device=args.device,
                             threads=args.threads, overrides=_parse_set(args.set))
    except ValueError as e:
        print(f"seqpolicy-baseline: {e}", file=sys.stderr)
        return 2
    result = train_baseline(cfg, args.out, progress=not args.no_progress)
    best = result.best
    print(f"{result.status}: {result.steps} steps in {result.wall_s:.0f} s; best checkpoint {best['zip']} "
          f"(step {best['step']}, eval return {best['eval_return_mean']:.1f}); run folder {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
