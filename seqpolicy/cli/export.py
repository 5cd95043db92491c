"""``seqpolicy-export``: write an agent's network into its folder in a format other runtimes run (ONNX)."""

from __future__ import annotations

import argparse
import sys

from seqpolicy.cli._common import OneLineParser, positive_int, run_cli

PROG = "seqpolicy-export"
EPILOG = """\
examples:
  # write model.onnx into a DT or BC agent folder (recorded with its sha256 in agent.json)
  seqpolicy-export onnx runs/hopper-dt/agent

  # in a deployment script: fail unless model.onnx is there and made from the folder's weights
  seqpolicy-export onnx runs/hopper-dt/agent --check

Then seqpolicy.load_agent(DIR, runtime="onnxruntime") runs it, or onnxruntime alone (README:
"Deploy with ONNX"). TT agents are not exported: their planner calls the model through a
key/value cache, in Python.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Export an agent's network for other runtimes.", epilog=EPILOG)
    sub = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    o = sub.add_parser("onnx", help="ONNX for onnxruntime (DT and BC agents)", epilog=EPILOG,
                       description="Write model.onnx (batch dimension dynamic) into an agent folder and record it "
                                   "in agent.json, after onnx.checker and a comparison with PyTorch's actions.")
    o.add_argument("agent", metavar="AGENT_DIR", help="agent folder (or a seqpolicy-train run folder)")
    o.add_argument("--check", action="store_true",
                   help="write nothing: exit with an error unless model.onnx is there, recorded, unaltered and made "
                        "from the folder's current weights")
    o.add_argument("--opset", type=positive_int, default=None, metavar="N",
                   help="ONNX opset to target (default: torch's exporter's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from seqpolicy.agents.onnx_export import export_onnx
        from seqpolicy.agents.onnx_network import EXPORT_TOLERANCE, check_onnx

        if args.check:
            record = check_onnx(args.agent)
            print(f"{args.agent}: {record['file']} is up to date (sha256 {record['sha256'][:12]}..., opset "
                  f"{record['opset']})")
            return 0
        path = export_onnx(args.agent, opset=args.opset)
        record = check_onnx(path.parent)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {record['opset']}; its actions equal "
              f"PyTorch's within {EXPORT_TOLERANCE:g} on sample inputs)")
        print(f"load it with seqpolicy.load_agent({str(path.parent)!r}, runtime='onnxruntime')")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
