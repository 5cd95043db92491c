"""seqpolicy-collect: roll out a policy in a Gymnasium env and write a local Minari dataset."""

from __future__ import annotations

import argparse
import sys

from seqpolicy.cli._common import (
    OneLineParser,
    add_env_mismatch_option,
    add_threads_option,
    apply_threads,
    check_output,
    non_negative_float,
    non_negative_int,
    positive_int,
    registered_env_id,
    run_cli,
)

PROG = "seqpolicy-collect"
EPILOG = """\
policies:
  random                     uniform random actions
  pointreach-expert          PointReach's scripted expert (pointreach-noisy: with N(0, 1.5) noise)
  PATH.zip                   a Stable-Baselines3 model (e.g. the zoo's td3-medium/td3-medium.zip)
  PATH/                      a seqpolicy agent folder (with agent.json)

examples:
  # 100 episodes of the scripted expert on the toy env
  seqpolicy-collect --env seqpolicy/PointReach-v0 --policy pointreach-expert --episodes 100 \\
      --dataset-id pointreach/expert-v0

  # 200k transitions of the committed Hopper medium policy with N(0, 0.1) action noise
  seqpolicy-collect --env Hopper-v4 --policy envs/Hopper-v4/td3-medium/td3-medium.zip \\
      --steps 200000 --action-noise 0.1 --seed 1 --dataset-id seqpolicy/hopper-v4/medium-v0

The dataset goes to the local Minari store ($MINARI_DATASETS_PATH or ~/.minari/datasets), with the
policy, seeds, env id and return statistics in its metadata; read it with
`seqpolicy-dataset info ID` or pass the id to the trainers' --dataset.
--out FILE.npz writes seqpolicy's own format instead.
SB3 zips are pickle-based: pass only zips you made or trust.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__, epilog=EPILOG)
    p.add_argument("--env", required=True, type=registered_env_id, help="Gymnasium env id")
    p.add_argument("--policy", required=True, help="random, pointreach-expert, pointreach-noisy, a .zip or a folder")
    n = p.add_mutually_exclusive_group(required=True)
    n.add_argument("--steps", type=positive_int, metavar="N",
                   help="transitions to collect (the last episode is cut, as truncated)")
    n.add_argument("--episodes", type=positive_int, metavar="N", help="episodes to collect")
    p.add_argument("--seed", type=non_negative_int, default=0, help="episode i is reset with seed + i (default 0)")
    p.add_argument("--action-noise", type=non_negative_float, default=0.0, metavar="STD",
                   help="std of Gaussian action noise, in units of half the action range (default 0)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--dataset-id", metavar="ID", help="Minari id to write, e.g. seqpolicy/hopper-v4/medium-v0")
    out.add_argument("--out", metavar="FILE.npz", help="write a seqpolicy .npz file instead of a Minari dataset")
    p.add_argument("--description", default=None, help="free text stored with the dataset")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset with the same id")
    p.add_argument("--no-progress", action="store_true")
    add_env_mismatch_option(p)
    add_threads_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_threads(args.threads)
    return run_cli(PROG, lambda: _collect(args, sys.argv[1:] if argv is None else argv))


def _collect(args: argparse.Namespace, argv: list[str]) -> int:
    from seqpolicy.collect import collect, write_collected
    from seqpolicy.zoo import raise_if_moved

    raise_if_moved(args.policy)  # e.g. envs/Hopper-v4/td3-medium.zip, now td3-medium/td3-medium.zip

    # the output is checked before collecting, which can take hours
    if args.dataset_id:
        from seqpolicy.data.minari_io import check_new_dataset_id

        check_new_dataset_id(args.dataset_id, overwrite=args.overwrite)
    else:
        if not args.out.endswith(".npz"):
            raise ValueError(f"--out {args.out}: name a .npz file (seqpolicy's trajectories format), e.g. "
                             "data/expert.npz.")
        check_output(args.out, "--out")
    data = collect(args.env, args.policy, n_steps=args.steps, n_episodes=args.episodes, seed=args.seed,
                   action_noise=args.action_noise, progress=not args.no_progress,
                   allow_env_mismatch=args.allow_env_mismatch)
    data.metadata["command"] = "seqpolicy-collect " + " ".join(argv)
    if args.dataset_id:
        write_collected(data, args.dataset_id, description=args.description, overwrite=args.overwrite)
        where = f"Minari dataset {args.dataset_id}"
    else:
        data.metadata.pop("_seeds", None)
        data.save(args.out)
        where = args.out
    r = data.metadata["returns_of_finished_episodes"]
    mean = "n/a" if r["mean"] is None else f"{r['mean']:.1f} (min {r['min']:.1f}, max {r['max']:.1f})"
    print(f"wrote {where}: {data.metadata['n_steps']} transitions, {len(data)} episodes "
          f"({r['n']} finished, mean return {mean}) in {data.metadata['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
