"""``seqpolicy-tt-report``: what a Trajectory Transformer has learnt, token by token, on windows of a dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seqpolicy.cli._common import (
    OneLineParser,
    add_threads_option,
    apply_threads,
    check_output,
    non_negative_int,
    positive_int,
    registered_env_id,
    run_cli,
)

PROG = "seqpolicy-tt-report"

EXAMPLES = """\
examples:
  # the zoo's Hopper TT on 1000 windows of its own dataset (training data: it saw every episode)
  seqpolicy-tt-report --env Hopper-v4 --agent tt --windows 1000

  # your TT on data it never saw: another dataset, or the held-out 10% of a seeded episode split
  # (held out only if it was trained on the rest: seqpolicy.evaluation.prediction.split_episodes)
  seqpolicy-tt-report --agent runs/hopper-tt/agent --dataset seqpolicy/hopper-v4/expert-v0 \\
      --json report.json
  seqpolicy-tt-report --agent runs/hopper-tt/agent --holdout-fraction 0.1 --seed 0

Per kind of token (observation, action, reward, value): top-1 accuracy of the next token
(teacher-forced, no dropout), within +-1 bin, mean cross-entropy; for reward and value the error
of the predicted expectation against the data's value, its correlation, and the data's std.
Windows are prepared as the trainer prepares them; the trainers use every episode of their
dataset, so windows of it are training data.
Errors are one line; SEQPOLICY_DEBUG=1 shows the full traceback.
"""


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Next-token accuracy and reward/value errors of a Trajectory "
                      "Transformer on windows of a dataset.", epilog=EXAMPLES)
    p.add_argument("--agent", required=True, metavar="tt|NAME|PATH",
                   help="a saved TT agent folder (or seqpolicy-train run folder), or a zoo name with --env")
    p.add_argument("--env", default=None, type=registered_env_id,
                   help="Gymnasium env id (needed for a zoo name; default: the agent's)")
    p.add_argument("--dataset", default=None, metavar="ID_OR_PATH",
                   help="a local Minari id or folder, a D4RL .hdf5, a seqpolicy .npz, or pointreach-mixed "
                        "(default: the dataset the agent was trained on)")
    p.add_argument("--windows", type=positive_int, default=1000, metavar="N",
                   help="windows to read, distinct starts drawn with --seed (default 1000)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the window draw and split (default 0)")
    p.add_argument("--holdout-fraction", type=fraction, default=None, metavar="F",
                   help="read only the held-out share F of a seeded episode split (default: every episode)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="windows per forward pass "
                   "(default 64)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON to PATH")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_threads_option(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_threads(args.threads)
    return run_cli(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from seqpolicy.agents.loading import load_agent, resolve_agent_path
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.common.threads import acting_threads, intra_op_threads
    from seqpolicy.evaluation.prediction import prediction_report
    from seqpolicy.zoo import get_agent, is_agent_path, raise_if_moved

    check_output(args.json, "--json")  # fail before loading data
    if is_agent_path(args.agent):
        raise_if_moved(args.agent)
        agent = load_agent(resolve_agent_path(args.agent), device=args.device)
    elif args.env is None:
        raise ValueError(f"--agent {args.agent} is not a folder: pass a saved agent's path, or --env with a zoo name.")
    else:
        agent = get_agent(args.env, args.agent, device=args.device)
    if getattr(agent, "kind", None) != "tt":
        raise ValueError(f"--agent {args.agent} is a {type(agent).__name__}: the report reads a Trajectory "
                         "Transformer's token predictions.")
    dataset = args.dataset or agent.dataset_id
    if dataset is None:
        raise ValueError("the agent records no dataset: pass --dataset.")
    with intra_op_threads(acting_threads()):  # batched inference: --threads, one by default
        report = prediction_report(agent, dataset, n_windows=args.windows, seed=args.seed,
                                   holdout_fraction=args.holdout_fraction, batch_size=args.batch_size,
                                   env_id=args.env)
    print(report.to_markdown())
    print(f"\n{report.wall_s:.1f} s")
    if args.json:
        atomic_write_json(args.json, {"agent": args.agent, "dataset": dataset, **report.to_json(),
                                      "threads": acting_threads()})
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
