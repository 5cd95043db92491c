"""``seqpolicy-eval``: score an agent on an env and record a video of it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seqpolicy.cli._common import OneLineParser, frame_size, non_negative_int, positive_int, run_cli

PROG = "seqpolicy-eval"

EXAMPLES = """\
examples:
  # the env's default zoo agent (envs/Hopper-v4/), 10 episodes, a video of the first one in videos/
  seqpolicy-eval --env Hopper-v4

  # the random baseline, 100 episodes over 8 envs, no video, results as JSON
  seqpolicy-eval --env Hopper-v4 --agent random --episodes 100 --n-envs 8 --no-video --json random.json

  # an agent you trained, recording its best and worst episodes
  seqpolicy-eval --env Hopper-v4 --agent runs/hopper-dt/agent --record best --episodes 20
  seqpolicy-eval --env Hopper-v4 --agent runs/hopper-dt/agent --record worst --video-size 320x320

  # the zoo's TT with a wider, every-step search
  seqpolicy-eval --env Hopper-v4 --agent tt --planner beam_width=32 plan_freq=1 --no-video

Episode i is reset with seed SEED + i, so two runs with the same options score the same episodes.
Videos are rendered headless (MUJOCO_GL=egl, else osmesa; a MUJOCO_GL you set wins).
Errors are one line; SEQPOLICY_DEBUG=1 shows the full traceback.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Evaluate an agent on a Gymnasium env: per-episode returns, mean, "
                      "95% bootstrap CI, D4RL-normalised score, and a video.", epilog=EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. Hopper-v4")
    p.add_argument("--agent", default=None, metavar="dt|tt|bc|td3|sac|ppo|random|NAME|PATH",
                   help="a zoo agent of the env (NAME: any name its preset lists, e.g. dt-medium-expert), the "
                        "random baseline, or a saved agent folder / SB3 .zip (default: the env's default zoo agent)")
    p.add_argument("--episodes", type=positive_int, default=None, help="episodes to score (default: the "
                   "env preset's, else 10)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="episode i uses seed SEED+i (default 0)")
    p.add_argument("--n-envs", type=positive_int, default=None,
                   help="envs stepped together (default: the env preset's, else 1)")
    p.add_argument("--vectorization", choices=("sync", "async"), default="sync",
                   help="with --n-envs > 1: one process (sync) or a subprocess per env (async)")
    p.add_argument("--max-episode-steps", type=positive_int, default=None, help="cut episodes after N steps")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=True,
                   help="record a video (default: on)")
    p.add_argument("--record", choices=("first", "best", "worst", "all"), default="first",
                   help="which evaluated episodes to record (default: first)")
    p.add_argument("--video-dir", default="videos", help="folder for videos (default: videos/)")
    p.add_argument("--video-size", type=frame_size, default=None, metavar="WxH",
                   help="frame size for envs that take one (default: the env preset's, else 480x480)")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                   help="draw step, return so far and the DT return-to-go target on the video (default: on)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all results as JSON to PATH")
    p.add_argument("--fast-render", action=argparse.BooleanOptionalAction, default=None,
                   help="MuJoCo envs: no shadows or reflections (about 3x faster frames with software OpenGL; "
                        "default: the env preset's, else off)")
    p.add_argument("--device", default="auto", help="torch device for network agents (default: auto)")
    p.add_argument("--planner", nargs="+", default=None, metavar="PRESET|KEY=VALUE",
                   help="TT agents: a planner preset (paper, cpu, greedy) and/or settings on top of the agent's "
                        "own, e.g. --planner beam_width=32 plan_freq=1, or --planner cpu k_act=1 cdf_act=None")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.evaluation.compare import results_table
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.zoo import ZooError, get_agent, load_preset

    if args.video:
        from seqpolicy.evaluation.video import DEFAULT_SIZE, check_video_folder, record_video, setup_headless

        setup_headless()  # before anything imports MuJoCo
        check_video_folder(args.video_dir)  # fail before spending time on the evaluation
    try:
        preset_eval = load_preset(args.env).eval
    except ZooError:
        preset_eval = {}
    episodes = args.episodes or int(preset_eval.get("episodes", 10))
    seed = args.seed if args.seed is not None else int(preset_eval.get("seed", 0))
    n_envs = args.n_envs or min(int(preset_eval.get("n_envs", 1)), episodes)
    fast = args.fast_render if args.fast_render is not None else bool(preset_eval.get("fast_render", False))
    agent = get_agent(args.env, args.agent, device=args.device, seed=seed)
    if args.planner:
        from seqpolicy.agents.tt import TrajectoryTransformerAgent
        from seqpolicy.agents.tt.planner import planner_from_args

        if not isinstance(agent, TrajectoryTransformerAgent):
            raise ValueError(f"--planner applies to Trajectory Transformer agents; {args.agent or 'the default agent'}"
                             f" is a {type(agent).__name__}.")
        agent.planner = planner_from_args(agent.planner, args.planner)
        print("planner: " + ", ".join(f"{k}={v}" for k, v in agent.planner.to_dict().items()))
    label = args.agent if args.agent and "/" not in args.agent and "\\" not in args.agent else None
    label = label or getattr(agent, "kind", None) or type(agent).__name__
    result = evaluate(agent, args.env, episodes, seed, n_envs, vectorization=args.vectorization,
                      max_episode_steps=args.max_episode_steps, progress=sys.stderr.isatty())
    print(results_table({label: result}))
    shown = ", ".join(f"{r:.1f}" for r in result.returns[:20])
    more = ""
    if result.n_episodes > 20:
        more = f", ... ({result.n_episodes} in all{'' if args.json else '; see --json'})"
    print(f"returns per episode: {shown}{more}")
    print(f"{result.env_steps} env steps in {result.wall_time_s:.1f} s ({result.steps_per_second:.0f} steps/s)")
    videos = []
    if args.video:
        print(f"recording ({args.record}) into {args.video_dir}/ ...", flush=True)
        videos = record_video(agent, args.env, args.video_dir, result=result, record=args.record,
                              size=args.video_size or _preset_size(preset_eval) or DEFAULT_SIZE,
                              overlay=args.overlay, fast=fast, label=label,
                              max_episode_steps=args.max_episode_steps)
        for v in videos:
            print(f"video: {v.path} (episode {v.episode}, seed {v.seed}, {v.frames} frames)")
    if args.json:
        planner = getattr(agent, "planner", None)
        atomic_write_json(args.json, {"agent": args.agent, "label": label, "evaluation": result.to_dict(),
                                      "planner": planner.to_dict() if planner is not None else None,
                                      "videos": [v.to_dict() for v in videos]})
        print(f"json: {args.json}")
    return 0


def _preset_size(preset_eval: dict) -> tuple[int, int] | None:
    size = preset_eval.get("video_size")
    try:
        return frame_size(str(size)) if size else None
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"The env preset's eval.video_size: {e}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
