"""``seqpolicy-train``: train a sequence-model agent on offline data."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
from typing import Any

EXAMPLES = """\
examples:
  # a DT on the built-in PointReach data, about a minute on a laptop CPU
  seqpolicy-train dt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 --preset pointreach --out runs/pr

  # the paper's recipe on a local Minari dataset (or a D4RL .hdf5 file), GPU if there is one
  seqpolicy-train dt --dataset seqpolicy/hopper/medium-v0 --env Hopper-v4 --out runs/hopper-dt --device auto

  # continue after a crash or Ctrl-C, from runs/hopper-dt/checkpoint
  seqpolicy-train dt --dataset seqpolicy/hopper/medium-v0 --env Hopper-v4 --out runs/hopper-dt --resume

A run folder holds log.csv (train/loss, eval/return, ...), checkpoint/ (resumable) and, at the end, agent/
(load it with seqpolicy.DecisionTransformerAgent.load or evaluate it with seqpolicy-eval --agent PATH).
"""


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstrings written under each field of a config dataclass."""
    docs: dict[str, str] = {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = nxt.value.value
    return docs


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--field-name`` option per config field (default: the preset's value)."""
    docs = field_docs(cls)
    group = parser.add_argument_group("hyperparameters (override the preset)")
    for f in dataclasses.fields(cls):
        kind = _field_type(f)
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                           metavar=kind.__name__.upper(), help=docs.get(f.name, ""))


def _field_type(f: dataclasses.Field) -> Any:
    text = str(f.type)
    for name, kind in (("bool", _bool), ("int", int), ("float", float)):
        if text.startswith(name):
            return kind
    return str


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from seqpolicy.training.dt import PRESETS, DTTrainConfig

    parser = argparse.ArgumentParser(prog="seqpolicy-train", description="Train a sequence-model agent on offline "
                                     "trajectories.", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="model", required=True, metavar="{dt}")
    dt = sub.add_parser("dt", help="Decision Transformer", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Train a Decision Transformer (paper recipe unless overridden).")
    dt.add_argument("--dataset", required=True, help="a local Minari dataset id, a D4RL .hdf5 file, a seqpolicy "
                    ".npz, or 'pointreach-mixed' (built-in toy data)")
    dt.add_argument("--env", dest="env_id", default=None, help="Gymnasium env id (default: the dataset's)")
    dt.add_argument("--out", required=True, help="run folder for log.csv, checkpoint/ and agent/")
    dt.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="starting hyperparameters")
    dt.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    dt.add_argument("--steps", dest="max_steps", type=int, default=None, help="alias of --max-steps")
    dt.add_argument("--quiet", action="store_true", help="no progress bar")
    dt.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard (pip install tensorboard)")
    add_config_arguments(dt, DTTrainConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from seqpolicy.training.dt import PRESETS, DTTrainConfig, train_dt

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(DTTrainConfig)
                 if getattr(args, f.name, None) is not None}
    try:
        config = dataclasses.replace(PRESETS[args.preset], **overrides)
        agent = train_dt(args.dataset, config, env_id=args.env_id, run_dir=args.out, resume=args.resume,
                         progress=not args.quiet, tensorboard=args.tensorboard)
    except KeyboardInterrupt:
        print(f"interrupted: the last checkpoint in {args.out}/checkpoint is intact; add --resume to continue.",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, ImportError) as e:
        print(f"seqpolicy-train: error: {e}", file=sys.stderr)
        return 2
    print(f"trained {agent.info.get('train_steps')} steps in {agent.info.get('train_wall_time_s')} s; "
          f"agent saved to {args.out}/agent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
