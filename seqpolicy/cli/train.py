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
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt --device auto

  # a Trajectory Transformer sized for a CPU (~2 h on 2 cores)
  seqpolicy-train tt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --preset cpu --out runs/hopper-tt

  # continue after a crash or Ctrl-C, from runs/hopper-dt/checkpoint
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt --resume

A run folder holds log.csv (train/loss, eval/return, ...), checkpoint/ (resumable) and, at the end, agent/
(load it with seqpolicy.DecisionTransformerAgent.load / TrajectoryTransformerAgent.load or evaluate it with
seqpolicy-eval --agent PATH).
"""


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstrings written under each field of a config dataclass (and of its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # bases first, so a redeclared field takes the subclass's doc
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
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
                           metavar=kind.__name__.upper(), help=docs.get(f.name, "").replace("%", "%%"))


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


# subcommand -> (help, description, training module, config class, train function)
TRAINERS = {
    "dt": ("Decision Transformer", "Train a Decision Transformer (paper recipe unless overridden).",
           "seqpolicy.training.dt", "DTTrainConfig", "train_dt"),
    "tt": ("Trajectory Transformer", "Train a Trajectory Transformer (the authors' recipe unless overridden; "
           "--preset cpu for a CPU-sized model).", "seqpolicy.training.tt", "TTTrainConfig", "train_tt"),
    "bc": ("behaviour cloning (MLP baseline)", "Train a behaviour-cloning MLP on the same data (the baseline of "
           "the DT and TT papers).", "seqpolicy.training.bc", "BCTrainConfig", "train_bc"),
}


def _trainer(name: str) -> tuple[dict, type, Any]:
    import importlib

    _, _, module, config, train = TRAINERS[name]
    mod = importlib.import_module(module)
    return mod.PRESETS, getattr(mod, config), getattr(mod, train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqpolicy-train", description="Train a sequence-model agent on offline "
                                     "trajectories.", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="model", required=True, metavar="{" + ",".join(TRAINERS) + "}")
    for name, (title, description, *_) in TRAINERS.items():
        presets, config_cls, _ = _trainer(name)
        p = sub.add_parser(name, help=title, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                           description=description)
        p.add_argument("--dataset", required=True, help="a local Minari dataset id, a D4RL .hdf5 file, a seqpolicy "
                       ".npz, or 'pointreach-mixed' (built-in toy data)")
        p.add_argument("--env", dest="env_id", default=None, help="Gymnasium env id (default: the dataset's)")
        p.add_argument("--out", required=True, help="run folder for log.csv, checkpoint/ and agent/")
        p.add_argument("--preset", choices=sorted(presets), default=None,
                       help="starting hyperparameters (default: paper; with --resume, the checkpoint's own)")
        p.add_argument("--resume", action="store_true",
                       help="continue from OUT/checkpoint with its settings (only the step count, evaluation, "
                            "checkpoint and log intervals and the device may change)")
        p.add_argument("--steps", dest="max_steps", type=int, default=None, help="alias of --max-steps")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice; on a machine shared with other jobs, "
                            "1 avoids threads spin-waiting for busy cores)")
        p.add_argument("--tensorboard", action="store_true",
                       help="also log to OUT/tensorboard (pip install tensorboard)")
        add_config_arguments(p, config_cls)
    return parser


def _base_config(args: argparse.Namespace, presets: dict, config_cls: type) -> Any:
    """The settings the command-line flags apply to: the named preset; on --resume without one, the settings
    stored in the checkpoint (a setting it predates keeps its default); otherwise the paper preset."""
    from seqpolicy.training.common import saved_train_config

    if args.preset is not None:
        return presets[args.preset]
    saved = saved_train_config(args.out) if args.resume else None
    if saved is None:  # no checkpoint: train() says so when resuming
        return presets["paper"]
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in saved.items() if k in names})


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is out of date.*")  # gymnasium's note on Hopper-v4 etc.
    args = build_parser().parse_args(argv)
    presets, config_cls, train = _trainer(args.model)
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)
                 if getattr(args, f.name, None) is not None}
    try:
        config = dataclasses.replace(_base_config(args, presets, config_cls), **overrides)
        agent = train(args.dataset, config, env_id=args.env_id, run_dir=args.out, resume=args.resume,
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
