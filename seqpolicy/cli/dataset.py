"""seqpolicy-dataset: inspect offline datasets (Minari ids, D4RL HDF5 files, seqpolicy .npz files)."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  seqpolicy-dataset info seqpolicy/hopper-v4/medium-v0      # a local Minari dataset
  seqpolicy-dataset info hopper-medium-v2.hdf5 --env Hopper-v4  # a D4RL file, checked against an env
  seqpolicy-dataset info data.npz --json                    # machine-readable
  seqpolicy-dataset list                                    # local Minari datasets
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="seqpolicy-dataset", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("info", help="print statistics and the env a dataset belongs to", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("source", metavar="ID_OR_PATH", help="Minari dataset id, Minari folder, .hdf5 or .npz file")
    i.add_argument("--env", default=None, help="check observation/action sizes against this env id")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub.add_parser("list", help="list the local Minari datasets")
    args = p.parse_args(argv)

    if args.command == "list":
        from seqpolicy.data.minari_io import local_minari_ids, minari_root

        ids = local_minari_ids()
        print(f"{len(ids)} Minari dataset(s) in {minari_root()}" + (":" if ids else ""))
        for d in ids:
            print(f"  {d}")
        return 0

    from seqpolicy.data.sources import load_trajectories
    from seqpolicy.data.stats import dataset_info, format_info

    try:
        data = load_trajectories(args.source, env_id=args.env)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"seqpolicy-dataset: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    info = dataset_info(data)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
