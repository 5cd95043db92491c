"""seqpolicy-baseline: train Stable-Baselines3 baselines (SAC, TD3, PPO) to collect offline datasets from."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from seqpolicy.cli._common import (
    OneLineParser,
    check_output,
    non_negative_int,
    positive_int,
    registered_env_id,
    run_cli,
)

PROG = "seqpolicy-baseline"
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

The run folder holds SB3 zips (checkpoints/step_*.zip, final.zip), a JSON card per checkpoint with
its evaluation returns, run.json, and with --keep-replay replay.npz (every transition in order).
A folder that holds a run is refused unless --overwrite. Ctrl-C or SIGTERM stops the run and saves
final.zip (exit status 130 or 143); a baseline run does not resume.
SB3 zips are pickle-based: load only zips you made yourself or trust.
"""


def key_value(text: str) -> tuple[str, object]:
    """``learning_rate=3e-4`` -> ("learning_rate", 0.0003): the value as JSON when it parses, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r} (e.g. --set learning_starts=1000)")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a baseline and save checkpoints with evaluation returns",
                       epilog=EPILOG)
    t.add_argument("--algo", choices=["sac", "td3", "ppo"], default="td3", help="SB3 algorithm (default td3)")
    t.add_argument("--env", required=True, type=registered_env_id, help="Gymnasium env id, e.g. Hopper-v4")
    t.add_argument("--steps", type=positive_int, default=1_000_000, metavar="N",
                   help="env steps to train (default 1000000)")
    t.add_argument("--out", required=True, metavar="FOLDER", help="run folder to write")
    t.add_argument("--overwrite", action="store_true",
                   help="delete the run already in FOLDER (run.json, checkpoints/, final.*, replay.npz) and start "
                        "clean; without it a folder that holds a run is refused")
    t.add_argument("--seed", type=non_negative_int, default=0, help="(default 0)")
    t.add_argument("--checkpoint-every", type=positive_int, default=10_000, metavar="N",
                   help="env steps between checkpoints (default 10000)")
    t.add_argument("--eval-episodes", type=positive_int, default=10, metavar="N",
                   help="evaluation episodes per checkpoint (default 10)")
    t.add_argument("--keep-replay", action="store_true", help="write replay.npz (sac/td3), for medium-replay")
    t.add_argument("--max-minutes", type=positive_float, default=None, metavar="MIN",
                   help="stop gracefully and save after this long (default: no limit)")
    t.add_argument("--device", default="cpu", help="torch device (default cpu)")
    t.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch threads (default 1)")
    t.add_argument("--set", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                   help="override an rl-zoo hyperparameter (repeatable), e.g. --set learning_rate=3e-4")
    t.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("show", help="print a run's status and checkpoint returns")
    s.add_argument("run", metavar="FOLDER", help="run folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _show(args) if args.command == "show" else _train(args))


def _show(args: argparse.Namespace) -> int:
    from seqpolicy.training.baseline import load_run

    run = load_run(args.run)
    print(f"{run['config']['algo']} on {run['config']['env_id']}: {run['status']}, {run['steps']} steps, "
          f"{run['wall_s']:.0f} s")
    for c in run["checkpoints"]:
        print(f"  {c['zip']:<32} step {c['step']:>8}  eval return {c['eval_return_mean']:9.1f} "
              f"± {c['eval_return_std']:.1f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from seqpolicy.training.baseline import BaselineConfig, train_baseline

    cfg = BaselineConfig(algo=args.algo, env_id=args.env, steps=args.steps, seed=args.seed,
                         checkpoint_every=args.checkpoint_every, eval_episodes=args.eval_episodes,
                         keep_replay=args.keep_replay, max_minutes=args.max_minutes, device=args.device,
                         threads=args.threads, overrides=dict(args.set))
    check_output(args.out, "--out", folder=True)
    result = train_baseline(cfg, args.out, progress=not args.no_progress, overwrite=args.overwrite)
    best = result.best
    print(f"{result.status}: {result.steps} steps in {result.wall_s:.0f} s; best checkpoint {best['zip']} "
          f"(step {best['step']}, eval return {best['eval_return_mean']:.1f}); run folder {result.out_dir}")
    if result.signal is not None:  # stopped early: say so, and not with the status of a finished run
        name = signal.Signals(result.signal).name
        print(f"{PROG}: stopped by {name} at step {result.steps}: saved {result.out_dir / 'final.zip'} (step "
              f"{result.steps}) and its card final.json; a baseline run does not resume (train it again with "
              "--overwrite, or into another --out)", file=sys.stderr)
        return 128 + result.signal
    return 0


if __name__ == "__main__":
    sys.exit(main())
