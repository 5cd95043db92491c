"""``seqpolicy-calibrate``: sweep a Decision Transformer's target return and keep the best one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqpolicy.cli._common import OneLineParser, check_output, non_negative_int, positive_int, run_cli

EXAMPLES = """\
examples:
  # try 6 targets between the data's mean return and 1.2x its best, 5 episodes each; print a table
  seqpolicy-calibrate --agent runs/hopper-dt/agent --env Hopper-v4

  # chosen targets, a plot, and the best target written into the agent's artifact
  seqpolicy-calibrate --agent runs/pr/agent --env seqpolicy/PointReach-v0 --targets 30 40 50 60 \\
      --episodes 10 --plot calibration.png --save

Every target is evaluated on the same episodes (seeds SEED..SEED+EPISODES-1).
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="seqpolicy-calibrate", description="Sweep a return-conditioned agent's target return.",
                      epilog=EXAMPLES)
    p.add_argument("--agent", required=True, metavar="PATH",
                   help="saved DT agent folder (or a seqpolicy-train run folder)")
    p.add_argument("--env", default=None, help="Gymnasium env id (default: the agent's)")
    p.add_argument("--targets", type=float, nargs="+", default=None, metavar="RETURN",
                   help="target returns to try (default: 6 from the data's mean return to 1.2x its best)")
    p.add_argument("--episodes", type=positive_int, default=5, metavar="N", help="episodes per target (default 5)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="episode i uses seed SEED+i (default 0)")
    p.add_argument("--n-envs", type=positive_int, default=1, metavar="N", help="envs stepped together (default 1)")
    p.add_argument("--plot", default=None, metavar="PATH", help="write achieved-vs-target PNG here")
    p.add_argument("--json", default=None, metavar="PATH", help="write the sweep as JSON here")
    p.add_argument("--save", action="store_true", help="store the best target (and the sweep) in the agent")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from seqpolicy.agents.loading import load_agent, resolve_agent_path
        from seqpolicy.common.artifact import atomic_write_json
        from seqpolicy.evaluation.calibrate import calibrate_target

        check_output(args.plot, "--plot")
        check_output(args.json, "--json")
        path = resolve_agent_path(args.agent)
        if args.save:
            check_output(path, "--agent (with --save)", folder=True)
        agent = load_agent(path, device=args.device)
        env = args.env or getattr(agent, "env_id", None)
        if env is None:
            raise ValueError("the agent records no env id: pass --env.")
        cal = calibrate_target(agent, env, args.targets, n_episodes=args.episodes, seed=args.seed,
                               n_envs=args.n_envs)
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
