"""``seqpolicy-train``: train a sequence-model agent on offline data.

Its options come from the trainer config dataclasses: one ``--field-name`` per field, typed by the field's
annotation (``Literal[...]`` fields offer their values as choices), documented by the field's docstring, and the
paper recipe's value shown as the default beside every other recipe's that differs
(``seqpolicy.cli._config_options`` holds the one mapping from a field to an option). ``--recipe NAME`` picks the
starting hyperparameters (``seqpolicy.training.recipes``); ``--preset NAME``, its 0.1 spelling, is accepted until 0.3.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from seqpolicy.cli._common import OneLineParser, check_output, positive_int, registered_env_id, run_cli
from seqpolicy.cli._config_options import add_config_options
from seqpolicy.common.config_fields import field_docs  # noqa: F401 (where tests and users have found it)

PROG = "seqpolicy-train"

EXAMPLES = """\
examples:
  # a DT on the built-in PointReach data, about a minute on a laptop CPU
  seqpolicy-train dt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 \\
      --recipe pointreach --out runs/pr

  # the paper's recipe on a local Minari dataset (or a D4RL .hdf5 file), on a GPU if there is one
  seqpolicy-train dt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --out runs/hopper-dt

  # a Trajectory Transformer sized for a CPU (~2 h on 2 cores)
  seqpolicy-train tt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --recipe cpu \\
      --out runs/hopper-tt

  # the Online DT: pretrain a stochastic DT, then fine-tune it online (seqpolicy-train odt --help)
  seqpolicy-train odt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 \\
      --recipe pointreach --out runs/pr-odt

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
      --recipe pointreach --out runs/pr-odt

  # start from a stochastic DT trained offline (its network, statistics and targets are kept)
  seqpolicy-train dt --dataset pointreach-mixed --env seqpolicy/PointReach-v0 --recipe pointreach \\
      --stochastic true --out runs/pr-sdt
  seqpolicy-train odt --from runs/pr-sdt/agent --dataset pointreach-mixed \\
      --env seqpolicy/PointReach-v0 --recipe pointreach --online-steps 10000 --out runs/pr-odt2

  # the Hopper-v4 zoo entry: the cpu recipe with the paper's targets (~10 min + ~2-2.5 h, one core)
  seqpolicy-train odt --dataset seqpolicy/hopper-v4/medium-v0 --env Hopper-v4 --recipe cpu \\
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
           "--recipe cpu for a CPU-sized model).", "seqpolicy.training.tt", "TTTrainConfig", "train_tt"),
    "bc": ("behaviour cloning (MLP baseline)", "Train a behaviour-cloning MLP on the same data (the baseline of "
           "the DT and TT papers).", "seqpolicy.training.bc", "BCTrainConfig", "train_bc"),
    "odt": ("Online Decision Transformer (online fine-tuning)", "Fine-tune a stochastic Decision Transformer online "
            "(the Online DT paper's recipe unless overridden; --recipe cpu for one CPU core): from --from AGENT_DIR, "
            "or pretrained here on --dataset first.", "seqpolicy.training.odt", "ODTTrainConfig", "train_odt"),
}
TRAINER_EXAMPLES = {"odt": ODT_EXAMPLES}  # a trainer's own examples, in place of EXAMPLES

OPTION_NAMES = {"max_steps": "--steps"}  # config fields whose option is not --field-name
HIDDEN_ALIASES = {"max_steps": "--max-steps"}  # older spellings still accepted (recorded commands), not shown


def field_choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of every trainer config's ``Literal``-typed fields (the choices --help lists), by field."""
    from seqpolicy.common.config_fields import field_choices as choices_of

    return {name: values for trainer in TRAINERS for name, values in choices_of(_trainer(trainer)[1]).items()}


def add_config_arguments(cls: type, recipes: dict[str, Any], run: argparse._ArgumentGroup,
                         hyper: argparse._ArgumentGroup) -> None:
    """One option per field of ``cls`` (``seqpolicy.cli._config_options``): RunSettings' fields in ``run``, the
    others in ``hyper``; the help shows the paper recipe's value and every other recipe's that differs.

    Options default to nothing (argparse.SUPPRESS): only the flags given override the recipe, so a resumed run
    changes only what was asked.
    """
    from seqpolicy.training.common import RunSettings

    run_fields = {f.name for f in dataclasses.fields(RunSettings)}
    add_config_options(cls, lambda name: run if name in run_fields else hyper,
                       lambda name: _defaults(name, recipes), names=OPTION_NAMES, hidden_aliases=HIDDEN_ALIASES)


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


def _defaults(name: str, recipes: dict[str, Any]) -> str:
    """``default 128; cpu: 64, pointreach: 64``: the paper recipe's value, then the other recipes' that differ."""
    def show(value: Any) -> str:
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else f"{value:g}" \
            if isinstance(value, float) else str(value)

    default = getattr(recipes["paper"], name)
    others = [f"{r}: {show(getattr(c, name))}" for r, c in recipes.items()
              if r != "paper" and getattr(c, name) != default]
    return f"default {show(default)}" + (f"; {', '.join(others)}" if others else "")


def _trainer(name: str) -> tuple[dict, type, Any]:
    """Trainer ``name``'s recipes (``seqpolicy.training.recipes.RECIPES[name]``), config class and train function."""
    import importlib

    from seqpolicy.training.recipes import RECIPES

    _, _, module, config, train = TRAINERS[name]
    mod = importlib.import_module(module)
    return RECIPES[name], getattr(mod, config), getattr(mod, train)


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
        recipes, config_cls, _ = _trainer(name)
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
        p.add_argument("--recipe", "--preset", dest="recipe", choices=sorted(recipes), default=None,
                       help="starting hyperparameters, a named training recipe (default: paper; with --resume, the "
                            "checkpoint's own); --preset is its old spelling, accepted until 0.3")
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
        hyper = p.add_argument_group("hyperparameters (default: the paper recipe's value; --recipe picks another)")
        add_config_arguments(config_cls, recipes, run, hyper)
    return parser


def parsed_config(args: argparse.Namespace) -> Any:
    """The train config a parsed command line asks for: the flags given, on top of :func:`_base_config`.

    Raises:
        ValueError: the config refuses a value; the message names options (``--steps``), not fields.
        FileNotFoundError: ``--resume`` without a checkpoint in ``--out``.
    """
    recipes, config_cls, _ = _trainer(args.model)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    base = _base_config(args, recipes, config_cls)
    try:
        return dataclasses.replace(base, **overrides)
    except ValueError as e:  # the config's validation names its fields; the user typed options
        raise ValueError(with_option_names(str(e), config_cls)) from e


def _base_config(args: argparse.Namespace, recipes: dict, config_cls: type) -> Any:
    """The settings the command-line flags apply to: the named recipe; on --resume without one, the settings
    stored in the checkpoint (a setting it predates keeps its default, or what such runs did: PREDATED);
    otherwise the paper recipe."""
    from seqpolicy.training.checkpoint import predated_settings
    from seqpolicy.training.common import saved_train_config
    from seqpolicy.training.run_folder import no_checkpoint_error

    saved = saved_train_config(args.out) if args.resume else None
    if args.resume and saved is None:  # before any data loads or folder is made
        raise no_checkpoint_error(args.out)
    if args.recipe is not None:
        return recipes[args.recipe]
    if saved is None:
        return recipes["paper"]
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{**predated_settings(config_cls), **{k: v for k, v in saved.items() if k in names}})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code = run_cli(PROG, lambda: _train(args), on_stop=lambda: _what_is_kept(args))
    from seqpolicy.training.distributed import leave_process, under_torchrun

    if under_torchrun():  # gloo can abort the interpreter's teardown after a finished run (see leave_process)
        leave_process(code)
    return code


def _train(args: argparse.Namespace) -> int:
    _, _, train = _trainer(args.model)
    check_output(args.out, "--out", folder=True)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    config = parsed_config(args)
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
    from seqpolicy.training.distributed import under_torchrun

    words = [args.model, "--dataset", args.dataset, *(["--env", args.env_id] if args.env_id else []),
             "--out", str(args.out), "--resume", *(["--threads", str(args.threads)] if args.threads else [])]
    if under_torchrun():
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
