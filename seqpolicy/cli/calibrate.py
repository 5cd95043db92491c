"""``seqpolicy-calibrate``: sweep a Decision Transformer's target return and keep the best one."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from seqpolicy.cli._common import (
    OneLineParser,
    add_env_mismatch_option,
    add_threads_option,
    apply_threads,
    check_output,
    non_negative_int,
    positive_int,
    registered_env_id,
    run_cli,
)

EXAMPLES = """\
examples:
  # try 6 targets between the data's mean return and 1.2x its best, 5 episodes each; print a table
  seqpolicy-calibrate --agent runs/hopper-dt/agent --env Hopper-v4

  # chosen targets, a plot, and the best target written into the agent's artifact
  seqpolicy-calibrate --agent runs/pr/agent --env seqpolicy/PointReach-v0 --targets 30 40 50 60 \\
      --episodes 10 --plot calibration.png --save

Every target is evaluated on the same episodes (seeds SEED..SEED+EPISODES-1), from seed {seed} by
default: held out from the episodes seqpolicy-eval and seqpolicy-compare score by default (seeds 0
up), so the target is not tuned on the episodes it is then scored on.
"""


def build_parser() -> argparse.ArgumentParser:
    from seqpolicy.evaluation.calibrate import CALIBRATION_SEED

    p = OneLineParser(prog="seqpolicy-calibrate", description="Sweep a return-conditioned agent's target return.",
                      epilog=EXAMPLES.format(seed=CALIBRATION_SEED))
    p.add_argument("--agent", required=True, metavar="PATH",
                   help="saved DT agent folder (or a seqpolicy-train run folder)")
    p.add_argument("--env", default=None, type=registered_env_id, help="Gymnasium env id (default: the agent's)")
    p.add_argument("--targets", type=float, nargs="+", default=None, metavar="RETURN",
                   help="target returns to try (default: 6 from the data's mean return to 1.2x its best)")
    p.add_argument("--episodes", type=positive_int, default=5, metavar="N", help="episodes per target (default 5)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help=f"episode i uses seed SEED+i (default {CALIBRATION_SEED}: held out from the seeds "
                        "seqpolicy-eval and seqpolicy-compare score by default, 0 up)")
    p.add_argument("--n-envs", type=positive_int, default=1, metavar="N", help="envs stepped together (default 1)")
    p.add_argument("--plot", default=None, metavar="PATH", help="write achieved-vs-target PNG here")
    p.add_argument("--json", default=None, metavar="PATH", help="write the sweep as JSON here")
    p.add_argument("--save", action="store_true", help="store the best target (and the sweep) in the agent")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_env_mismatch_option(p)
    add_threads_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_threads(args.threads)

    def body() -> int:
        from seqpolicy.agents.loading import load_agent, resolve_agent_path
        from seqpolicy.common.artifact import atomic_write_json
        from seqpolicy.evaluation.calibrate import CALIBRATION_SEED, calibrate_target
        from seqpolicy.zoo import raise_if_moved

        check_output(args.plot, "--plot")
        check_output(args.json, "--json")
        raise_if_moved(args.agent)
        path = resolve_agent_path(args.agent)
        if args.save:
            check_output(path, "--agent (with --save)", folder=True)
        agent = load_agent(path, device=args.device)
        env = args.env or getattr(agent, "env_id", None)
        if env is None:
            raise ValueError("the agent records no env id: pass --env.")
        seed = CALIBRATION_SEED if args.seed is None else args.seed
        seeds = f"seeds {seed}-{seed + args.episodes - 1}"
        if seed < CALIBRATION_SEED:
            warnings.warn(f"{seeds} may be the episodes seqpolicy-eval and seqpolicy-compare score (seeds 0 up by "
                          f"default): a target chosen on them is tuned on the test episodes. Leave --seed out to "
                          f"calibrate on held-out seeds ({CALIBRATION_SEED} up).", stacklevel=1)
        print(f"calibrating on {seeds}, {args.episodes} episode(s) per target"
              + (" (held out from the seeds evaluations score by default, 0 up)" if seed >= CALIBRATION_SEED
                 else ""), flush=True)
        cal = calibrate_target(agent, env, args.targets, n_episodes=args.episodes, seed=seed,
                               n_envs=args.n_envs, allow_env_mismatch=args.allow_env_mismatch)
        print(cal.markdown())
        if args.plot:
            print(f"plot: {cal.plot(args.plot)}")
        if args.json:
            atomic_write_json(args.json, cal.to_dict())
        if args.save:
            agent.target_return = cal.best_target
            agent.target_returns = sorted(set(agent.target_returns) | {cal.best_target})
            agent.info["calibration"] = cal.to_dict()
            agent.save(Path(path))
            print(f"saved target_return={cal.best_target:g} into {path}")
        return 0

    return run_cli("seqpolicy-calibrate", body)


if __name__ == "__main__":
    sys.exit(main())
