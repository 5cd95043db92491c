"""seqpolicy-dataset: inspect offline datasets (Minari ids, D4RL HDF5 files, seqpolicy .npz files)."""

from __future__ import annotations

import argparse
import json
import sys

from seqpolicy.cli._common import OneLineParser, registered_env_id, run_cli

PROG = "seqpolicy-dataset"
EPILOG = """\
examples:
  seqpolicy-dataset info seqpolicy/hopper-v4/medium-v0         # a local Minari dataset
  seqpolicy-dataset info hopper-medium-v2.hdf5 --env Hopper-v4  # a D4RL file, sizes checked
  seqpolicy-dataset info data.npz --json                       # machine-readable
  seqpolicy-dataset info pointreach-mixed                      # the built-in toy data
  seqpolicy-dataset list                                       # the local Minari datasets

ID_OR_PATH is anything the trainers' --dataset takes.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("info", help="print statistics and the env a dataset belongs to", epilog=EPILOG)
    i.add_argument("source", metavar="ID_OR_PATH", help="Minari dataset id, Minari folder, .hdf5 or .npz file, or "
                   "pointreach-mixed")
    i.add_argument("--env", default=None, type=registered_env_id,
                   help="check observation/action sizes against this env id")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub.add_parser("list", help="list the local Minari datasets")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _list() if args.command == "list" else _info(args))


def _list() -> int:
    from seqpolicy.data.minari_io import BUILD_ZOO, MAKE_ONE, local_minari_ids, minari_root

    ids = local_minari_ids()
    print(f"{len(ids)} Minari dataset(s) in {minari_root()}" + (":" if ids else "."))
    for d in ids:
        print(f"  {d}")
    if not ids:
        print("How to get some:")
        print(f"- {BUILD_ZOO}")
        print("- Minari's own datasets: `minari download ID` (e.g. mujoco/hopper/medium-v0) where there is internet.")
        print(f"- {MAKE_ONE}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from seqpolicy.data.stats import dataset_info, format_info
    from seqpolicy.training.common import env_spaces, resolve_dataset

    data = resolve_dataset(args.source, env_id=args.env)  # as the trainers' --dataset reads it
    if args.env is not None:
        env_spaces(data, args.env)  # the trainers' check that the data fits the env
    info = dataset_info(data)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
