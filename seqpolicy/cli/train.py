"""``seqpolicy-train``: train a sequence-model agent on offline data.

Its options are built from the trainer config dataclasses (one ``--field-name`` per field, the field's
docstring as help, every preset's value as the default shown) by a small hand-written builder: the fields are
flat ints, floats, bools and strings, which argparse handles directly.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from collections.abc import Callable
from typing import Any

from seqpolicy.cli._common import OneLineParser, check_output, positive_int, run_cli

PROG = "seqpolicy-train"

EXAMPLES = """\
examples:
  # a DT on the built-in PointReach data, about a minute on a laptop CPU
  seqpolicy-train dt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 \\
      --preset pointreach --out runs/pr

  # the paper's recipe on a local Minari dataset (or a D4RL .hdf5 file), on a GPU if there is one
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt

  # a Trajectory Transformer sized for a CPU (~2 h on 2 cores)
  seqpolicy-train tt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --preset cpu \\
      --out runs/hopper-tt

  # continue after a crash or Ctrl-C, from runs/hopper-dt/checkpoint, with its own settings
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt \\
      --resume

A run folder holds log.csv (train/loss, eval/return, ...), checkpoint/ (resumable) and, at the end,
agent/: evaluate it with `seqpolicy-eval --agent RUN/agent`, or load it in Python with
seqpolicy.load_agent("RUN/agent"). Errors are one line; SEQPOLICY_DEBUG=1 shows the traceback.
"""

# subcommand -> (help, description, training module, config class, train function)
TRAINERS = {
    "dt": ("Decision Transformer", "Train a Decision Transformer (the paper's recipe unless overridden).",
           "seqpolicy.training.dt", "DTTrainConfig", "train_dt"),
    "tt": ("Trajectory Transformer", "Train a Trajectory Transformer (the authors' recipe unless overridden; "
           "--preset cpu for a CPU-sized model).", "seqpolicy.training.tt", "TTTrainConfig", "train_tt"),
    "bc": ("behaviour cloning (MLP baseline)", "Train a behaviour-cloning MLP on the same data (the baseline of "
           "the DT and TT papers).", "seqpolicy.training.bc", "BCTrainConfig", "train_bc"),
}

OPTION_NAMES = {"max_steps": "--steps"}  # config fields whose option is not --field-name
HIDDEN_ALIASES = {"max_steps": "--max-steps"}  # older spellings still accepted (recorded commands), not shown


def field_choices() -> dict[str, tuple[str, ...]]:
    """Allowed values of the config fields that take one of a few strings, from the library's own lists.

    A field typed ``Literal[...]`` needs no entry: its values are read from the type.
    """
    from seqpolicy.agents.tt.discretizer import KINDS
    from seqpolicy.agents.tt.planner import PRESETS as PLANNER_PRESETS
    from seqpolicy.models.gpt import ACTIVATIONS
    from seqpolicy.training.common import PRECISIONS

    return {"activation": tuple(ACTIVATIONS), "discretizer": tuple(KINDS), "planner": tuple(PLANNER_PRESETS),
            "precision": tuple(PRECISIONS),
            "lr_schedule": ("constant", "cosine")}  # DTTrainConfig.__post_init__ accepts these two


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under each field of a config dataclass (and of its bases)."""
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
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def add_config_arguments(cls: type, presets: dict[str, Any], run: argparse._ArgumentGroup,
                         hyper: argparse._ArgumentGroup) -> None:
    """One ``--field-name`` option per field of ``cls``: RunSettings' fields in ``run``, the others in ``hyper``.

    Options default to nothing (argparse.SUPPRESS): only the flags given override the preset, so a resumed run
    changes only what was asked. The help shows the paper preset's value and every other preset's that differs.
    """
    from seqpolicy.training.common import RunSettings

    docs, hints, choices = field_docs(cls), typing.get_type_hints(cls), field_choices()
    run_fields = {f.name for f in dataclasses.fields(RunSettings)}
    for f in dataclasses.fields(cls):
        kind, optional = _base_type(hints[f.name])
        options: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if typing.get_origin(kind) is typing.Literal:
            options["choices"] = typing.get_args(kind)
        elif kind is bool:
            options.update(type=_bool, nargs="?", const=True, metavar="{true,false}")
        elif kind in (int, float):
            options.update(type=_or_none(kind) if optional else kind, metavar="N" if kind is int else "X")
        elif f.name in choices:
            options["choices"] = choices[f.name]
        else:
            options["metavar"] = f.name.upper()
        help_text = f"{docs.get(f.name, '')} ({_defaults(f.name, presets)})"
        group = run if f.name in run_fields else hyper
        group.add_argument(option_name(f.name), help=help_text.replace("%", "%%"), **options)
        if f.name in HIDDEN_ALIASES:
            group.add_argument(HIDDEN_ALIASES[f.name], help=argparse.SUPPRESS, **options)


def option_name(field: str) -> str:
    """The command-line option of a config field: ``--field-name`` unless OPTION_NAMES says otherwise."""
    return OPTION_NAMES.get(field, f"--{field.replace('_', '-')}")


def _base_type(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    args = typing.get_args(hint)
    if type(None) in args and typing.get_origin(hint) is not typing.Literal:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), True
    return hint, False


def _defaults(name: str, presets: dict[str, Any]) -> str:
    """``default 128; cpu: 64, pointreach: 64``: the paper preset's value, then the other presets' that differ."""
    def show(value: Any) -> str:
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else f"{value:g}" \
            if isinstance(value, float) else str(value)

    default = getattr(presets["paper"], name)
    others = [f"{p}: {show(getattr(c, name))}" for p, c in presets.items()
              if p != "paper" and getattr(c, name) != default]
    return f"default {show(default)}" + (f"; {', '.join(others)}" if others else "")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _or_none(kind: type) -> Callable[[str], Any]:
    """A number parser that also takes ``none`` (the field's "work it out from the data" value)."""
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" message
    return parse


def _trainer(name: str) -> tuple[dict, type, Any]:
    import importlib

    _, _, module, config, train = TRAINERS[name]
    mod = importlib.import_module(module)
    return mod.PRESETS, getattr(mod, config), getattr(mod, train)


def build_parser() -> argparse.ArgumentParser:
    from seqpolicy.training.common import RESUMABLE_CHANGES

    parser = OneLineParser(prog=PROG, description="Train a sequence-model agent on offline trajectories.",
                           epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="model", required=True, metavar="{" + ",".join(TRAINERS) + "}")
    for name, (title, description, *_) in TRAINERS.items():
        presets, config_cls, _ = _trainer(name)
        p = sub.add_parser(name, help=title, epilog=EXAMPLES, description=description)
        p.add_argument("--dataset", required=True, metavar="ID_OR_PATH",
                       help="a local Minari dataset id, a Minari folder, a D4RL .hdf5 file, a seqpolicy .npz, or "
                            "pointreach-mixed (built-in toy data); see seqpolicy-dataset")
        p.add_argument("--env", dest="env_id", default=None, metavar="ENV",
                       help="Gymnasium env id (default: the dataset's)")
        p.add_argument("--out", required=True, help="run folder for log.csv, checkpoint/ and agent/")
        p.add_argument("--preset", choices=sorted(presets), default=None,
                       help="starting hyperparameters (default: paper; with --resume, the checkpoint's own)")
        p.add_argument("--resume", action="store_true",
                       help="continue from OUT/checkpoint with its settings; only these may change: "
                            + ", ".join(sorted(option_name(n) for n in RESUMABLE_CHANGES)))
        run = p.add_argument_group("run settings (how the run goes, not what it learns)")
        run.add_argument("--threads", type=positive_int, default=None, metavar="N",
                         help="torch CPU threads (default: torch's choice; on a machine shared with other jobs, "
                              "1 avoids threads spin-waiting for busy cores)")
        run.add_argument("--quiet", action="store_true", help="no progress bar")
        run.add_argument("--tensorboard", action="store_true",
                         help="also log to OUT/tensorboard (pip install tensorboard)")
        hyper = p.add_argument_group("hyperparameters (default: the paper preset's value; --preset picks another)")
        add_config_arguments(config_cls, presets, run, hyper)
    return parser


def _base_config(args: argparse.Namespace, presets: dict, config_cls: type) -> Any:
    """The settings the command-line flags apply to: the named preset; on --resume without one, the settings
    stored in the checkpoint (a setting it predates keeps its default); otherwise the paper preset."""
    from seqpolicy.training.common import saved_train_config

    saved = saved_train_config(args.out) if args.resume else None
    if args.resume and saved is None:  # before any data loads or folder is made
        raise FileNotFoundError(f"--resume: no checkpoint in {args.out}. Start without --resume.")
    if args.preset is not None:
        return presets[args.preset]
    if saved is None:
        return presets["paper"]
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in saved.items() if k in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    presets, config_cls, train = _trainer(args.model)
    check_output(args.out, "--out", folder=True)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    config = dataclasses.replace(_base_config(args, presets, config_cls), **overrides)
    try:
        agent = train(args.dataset, config, env_id=args.env_id, run_dir=args.out, resume=args.resume,
                      progress=not args.quiet, tensorboard=args.tensorboard)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: the last checkpoint in {args.out}/checkpoint is intact; add --resume to "
              "continue.", file=sys.stderr)
        return 130
    from seqpolicy.training.distributed import is_main_process

    if is_main_process():  # under torchrun, rank 0 wrote the agent and reports it
        print(f"trained {agent.info.get('train_steps')} steps in {agent.info.get('train_wall_time_s')} s; "
              f"agent saved to {args.out}/agent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
