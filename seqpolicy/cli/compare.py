"""``seqpolicy-compare``: several agents, one harness, the same seeds; table, JSON, chart, side-by-side video."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from seqpolicy.cli._common import OneLineParser, frame_size, non_negative_int, positive_int, run_cli

PROG = "seqpolicy-compare"

EXAMPLES = """\
examples:
  # the zoo's agents against the random baseline, 20 episodes each on seeds 0..19
  seqpolicy-compare --env Hopper-v4 --agents dt tt sac random --episodes 20

  # your own agents (folders written by seqpolicy-train), 8 envs at a time, plus a side-by-side video
  seqpolicy-compare --env Hopper-v4 --agents runs/hopper-dt/agent runs/hopper-dt2/agent random --n-envs 8 --video

Writes comparison.md, comparison.json and comparison.png (mean and 95% bootstrap CI per agent) into --out.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Compare agents on one env with the same evaluation and seeds.",
                      epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. Hopper-v4")
    p.add_argument("--agents", nargs="+", required=True, metavar="AGENT",
                   help="zoo names (dt tt sac td3 ppo), random, or saved agent paths")
    p.add_argument("--episodes", type=positive_int, default=10, help="episodes per agent (default 10)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="episode i uses seed SEED+i (default 0)")
    p.add_argument("--n-envs", type=positive_int, default=1, help="envs stepped together (default 1)")
    p.add_argument("--max-episode-steps", type=positive_int, default=None, help="cut episodes after N steps")
    p.add_argument("--out", default=None, help="output folder (default: comparisons/<env>_<time>)")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=False,
                   help="also record one video with the agents side by side on seed SEED (default: off)")
    p.add_argument("--video-dir", default="videos", help="folder for the video (default: videos/)")
    p.add_argument("--video-size", type=frame_size, default=None, metavar="WxH",
                   help="frame size of each panel (default 480x480)")
    p.add_argument("--fast-render", action="store_true",
                   help="MuJoCo envs: no shadows or reflections (about 3x faster frames with software OpenGL)")
    p.add_argument("--device", default="auto", help="torch device for network agents (default: auto)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from seqpolicy.evaluation.compare import compare
    from seqpolicy.zoo import get_agent

    if len(set(args.agents)) != len(args.agents):
        raise ValueError(f"--agents lists an agent twice: {' '.join(args.agents)}")
    if args.video:
        from seqpolicy.evaluation.video import DEFAULT_SIZE, check_video_folder, record_side_by_side, setup_headless

        setup_headless()
        check_video_folder(args.video_dir)
    labels = _labels(args.agents)
    agents = {labels[spec]: get_agent(args.env, spec, device=args.device, seed=args.seed) for spec in args.agents}
    result = compare(agents, args.env, args.episodes, args.seed, args.n_envs,
                     max_episode_steps=args.max_episode_steps)
    out = args.out or f"comparisons/{args.env.replace('/', '__')}_{time.strftime('%Y%m%d-%H%M%S')}"
    paths = result.save(out)
    print(result.markdown())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if args.video:
        video = record_side_by_side(agents, args.env, args.video_dir, seed=args.seed,
                                    size=args.video_size or DEFAULT_SIZE, fast=args.fast_render,
                                    max_episode_steps=args.max_episode_steps)
        print(f"video: {video.path} ({video.frames} frames; returns "
              + ", ".join(f"{k} {v:.1f}" for k, v in video.returns.items()) + ")")
    return 0


def _labels(specs: list[str]) -> dict[str, str]:
    """Short table labels: a path's last folder (with its parent when that is just ``agent``)."""
    def short(spec: str) -> str:
        parts = Path(spec).parts
        if len(parts) <= 1:
            return spec
        return "/".join(parts[-2:]) if parts[-1] in ("agent", "agent/") else parts[-1]

    labels = {spec: short(spec) for spec in specs}
    if len(set(labels.values())) != len(specs):  # clashes: keep the full specs
        return {spec: spec for spec in specs}
    return labels


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
