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
import os
import re
import shlex
import signal
import sys
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqpolicy.cli._common import OneLineParser, check_output, positive_int, registered_env_id, run_cli

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

  # the Online DT: pretrain a stochastic DT, then fine-tune it online (seqpolicy-train odt --help)
  seqpolicy-train odt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 \\
      --preset pointreach --out runs/pr-odt

  # continue after a crash or Ctrl-C, from runs/hopper-dt/checkpoint, with its own settings
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt \\
      --resume

A run folder holds log.csv (train/loss, eval/return, ...), checkpoint/ (resumable) and, at the end,
agent/: evaluate it with `seqpolicy-eval --agent RUN/agent`, or load it in Python with
seqpolicy.load_agent("RUN/agent"). A folder that holds a run is refused unless --resume
continues it or --overwrite replaces it. Ctrl-C or SIGTERM stops after the step in progress
and checkpoints it. Errors are one line; SEQPOLICY_DEBUG=1 shows the traceback.
"""

ODT_EXAMPLES = """\
examples:
  # PointReach: pretrain a stochastic DT on the toy data, then 5000 online env steps (~1 min)
  seqpolicy-train odt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 \\
      --preset pointreach --out runs/pr-odt

  # start from a stochastic DT trained offline (its network, statistics and targets are kept)
  seqpolicy-train dt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 --preset pointreach \\
      --stochastic true --out runs/pr-sdt
  seqpolicy-train odt --from runs/pr-sdt/agent --dataset pointreach-mixed \\
      --env seqpolicy/PointReach-v0 --preset pointreach --online-steps 10000 --out runs/pr-odt2

  # the Hopper-v4 zoo entry: the cpu preset with the paper's targets (~10 min + ~2-2.5 h, one core)
  seqpolicy-train odt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --preset cpu \\
      --target-return 3600 --online-target 7200 --out runs/zoo/odt-medium --threads 1 --quiet

  # continue after a crash, kill -9 or Ctrl-C (replay buffer and random states come from the
  # checkpoint; --online-steps may grow)
  seqpolicy-train odt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 \\
      --out runs/zoo/odt-medium --resume

How a run goes: without --from, --steps gradient steps of offline pretraining on --dataset
(what `seqpolicy-train dt --stochastic true` does); then online iterations until --online-steps
env steps: collect --episodes-per-iteration episodes with sampled actions that ask for
--online-target, put them in the replay buffer (--buffer-size trajectories: the dataset's best
first, then first in, first out) with the returns they achieved as their returns-to-go, and take
--updates-per-iteration gradient steps on it. The progress bar shows env steps, the latest
return and loss. log.csv has a row per iteration (online/env_steps, online/return of the
exploring episodes, train/loss, train/entropy, train/temperature) and eval/return (mean action,
--target-return) every --online-eval-every iterations; checkpoints every
--online-checkpoint-every iterations hold the replay buffer. OUT/agent acts with its mean action;
seqpolicy.load_agent("OUT/agent", sample=True) samples. Refused before any work: a --from agent
that is a deterministic DT or made for another env, and --online-steps 0.
"""

# subcommand -> (help, description, training module, config class, train function)
TRAINERS = {
    "dt": ("Decision Transformer", "Train a Decision Transformer (the paper's recipe unless overridden).",
           "seqpolicy.training.dt", "DTTrainConfig", "train_dt"),
    "tt": ("Trajectory Transformer", "Train a Trajectory Transformer (the authors' recipe unless overridden; "
           "--preset cpu for a CPU-sized model).", "seqpolicy.training.tt", "TTTrainConfig", "train_tt"),
    "bc": ("behaviour cloning (MLP baseline)", "Train a behaviour-cloning MLP on the same data (the baseline of "
           "the DT and TT papers).", "seqpolicy.training.bc", "BCTrainConfig", "train_bc"),
    "odt": ("Online Decision Transformer (online fine-tuning)", "Fine-tune a stochastic Decision Transformer online "
            "(the Online DT paper's recipe unless overridden; --preset cpu for one CPU core): from --from AGENT_DIR, "
            "or pretrained here on --dataset first.", "seqpolicy.training.odt", "ODTTrainConfig", "train_odt"),
}
TRAINER_EXAMPLES = {"odt": ODT_EXAMPLES}  # a trainer's own examples, in place of EXAMPLES

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


def with_option_names(message: str, config_cls: type) -> str:
    """A config's validation message in the words of the command line: each field name (``max_steps``, also
    as ``DTTrainConfig.max_steps``) becomes its option (``--steps``); quoted values are left as they are."""
    names = sorted((f.name for f in dataclasses.fields(config_cls)), key=len, reverse=True)
    field = re.compile(rf"\b(?:{config_cls.__name__}\.)?({'|'.join(names)})\b")
    parts = re.split(r"('[^']*')", message)  # odd parts are quoted values
    return "".join(part if i % 2 else field.sub(lambda m: option_name(m.group(1)), part)
                   for i, part in enumerate(parts))


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


def _resumable(name: str, shared: frozenset[str]) -> frozenset[str]:
    """The settings a resumed run of trainer ``name`` may change: its module's RESUMABLE, else the shared ones."""
    import importlib

    return getattr(importlib.import_module(TRAINERS[name][2]), "RESUMABLE", shared)


def build_parser() -> argparse.ArgumentParser:
    from seqpolicy.training.common import RESUMABLE_CHANGES

    parser = OneLineParser(prog=PROG, description="Train a sequence-model agent on offline trajectories.",
                           epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="model", required=True, metavar="{" + ",".join(TRAINERS) + "}")
    for name, (title, description, *_) in TRAINERS.items():
        presets, config_cls, _ = _trainer(name)
        p = sub.add_parser(name, help=title, epilog=TRAINER_EXAMPLES.get(name, EXAMPLES), description=description)
        p.add_argument("--dataset", required=True, metavar="ID_OR_PATH",
                       help="a local Minari dataset id, a Minari folder, a D4RL .hdf5 file, a seqpolicy .npz, or "
                            "pointreach-mixed (built-in toy data); see seqpolicy-dataset")
        p.add_argument("--env", dest="env_id", default=None, metavar="ENV", type=registered_env_id,
                       help="Gymnasium env id (default: the dataset's)")
        p.add_argument("--out", required=True, help="run folder for log.csv, checkpoint/ and agent/")
        if name == "odt":
            p.add_argument("--from", dest="from_agent", default=None, metavar="AGENT_DIR",
                           help="start from this stochastic DT (kind odt: seqpolicy-train dt --stochastic true, or "
                                "an odt run) instead of pretraining one on --dataset; not needed with --resume")
        p.add_argument("--preset", choices=sorted(presets), default=None,
                       help="starting hyperparameters (default: paper; with --resume, the checkpoint's own)")
        again = p.add_mutually_exclusive_group()
        again.add_argument("--resume", action="store_true",
                           help="continue from OUT/checkpoint with its settings; only these may change: "
                                + ", ".join(sorted(option_name(n) for n in _resumable(name, RESUMABLE_CHANGES))))
        again.add_argument("--overwrite", action="store_true",
                           help="delete the run already in OUT (log.csv, checkpoint/, agent/, best/, ...) and start "
                                "clean; without it (or --resume) a folder that holds a run is refused")
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
    from seqpolicy.training.run_folder import no_checkpoint_error

    saved = saved_train_config(args.out) if args.resume else None
    if args.resume and saved is None:  # before any data loads or folder is made
        raise no_checkpoint_error(args.out)
    if args.preset is not None:
        return presets[args.preset]
    if saved is None:
        return presets["paper"]
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in saved.items() if k in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _train(args), on_stop=lambda: _what_is_kept(args))


def _train(args: argparse.Namespace) -> int:
    presets, config_cls, train = _trainer(args.model)
    check_output(args.out, "--out", folder=True)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    base = _base_config(args, presets, config_cls)
    try:
        config = dataclasses.replace(base, **overrides)
    except ValueError as e:  # the config's validation names its fields; the user typed options
        raise ValueError(with_option_names(str(e), config_cls)) from e
    from seqpolicy.training.common import TrainingInterrupted
    from seqpolicy.training.distributed import is_main_process

    try:
        start = {"from_agent": args.from_agent} if getattr(args, "from_agent", None) is not None else {}
        agent = train(args.dataset, config, env_id=args.env_id, run_dir=args.out, resume=args.resume,
                      overwrite=args.overwrite, progress=not args.quiet, tensorboard=args.tensorboard, **start)
    except TrainingInterrupted as e:  # Ctrl-C or SIGTERM while training: the step reached is checkpointed
        if is_main_process():  # under torchrun, rank 0 wrote the checkpoint and reports it
            how = "interrupted" if e.signum == signal.SIGINT else f"terminated ({signal.Signals(e.signum).name})"
            print(f"{PROG}: {how} at step {e.step}: saved a checkpoint of step {e.step} to {e.checkpoint}; "
                  f"continue with: {_resume_command(args)}", file=sys.stderr)
        return e.exit_code
    if is_main_process():  # under torchrun, rank 0 wrote the agent and reports it
        print(f"trained {agent.info.get('train_steps')} steps in {agent.info.get('train_wall_time_s')} s; "
              f"agent saved to {args.out}/agent")
    return 0


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run (its settings come from the checkpoint)."""
    words = [args.model, "--dataset", args.dataset, *(["--env", args.env_id] if args.env_id else []),
             "--out", str(args.out), "--resume", *(["--threads", str(args.threads)] if args.threads else [])]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"the same torchrun options with -m seqpolicy.cli.train {shlex.join(words)}"
    return f"{PROG} {shlex.join(words)}"


def _what_is_kept(args: argparse.Namespace) -> str:
    """After Ctrl-C or SIGTERM outside the training loop (loading data, building the model): what the run folder
    holds to continue from."""
    from seqpolicy.training.checkpoint import find_checkpoint, read_trainer_json

    ckpt = find_checkpoint(Path(args.out))
    if ckpt is None:
        return f"no checkpoint in {args.out}, nothing to resume"
    try:
        step = f" (step {read_trainer_json(ckpt)['step']})"
    except ValueError:
        step = ""
    return f"the checkpoint {ckpt}{step} is as it was; continue with: {_resume_command(args)}"


if __name__ == "__main__":
    sys.exit(main())
