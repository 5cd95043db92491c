"""``seqpolicy-eval``: score an agent on an env and record a video of it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seqpolicy.cli._common import OneLineParser, check_output, frame_size, non_negative_int, positive_int, run_cli

PROG = "seqpolicy-eval"
DEFAULT_EPISODES, DEFAULT_N_ENVS, DEFAULT_SEED = 10, 1, 0  # for envs whose preset does not set them

EXAMPLES = """\
examples:
  # the env's default zoo agent (envs/Hopper-v4/) on the preset's episodes, a video in videos/
  seqpolicy-eval --env Hopper-v4

  # the random baseline, 100 episodes over 8 envs, no video, results as JSON
  seqpolicy-eval --env Hopper-v4 --agent random --episodes 100 --n-envs 8 --no-video \\
      --json random.json

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
                      "95% bootstrap CI, D4RL-normalised score, and a video.", epilog=EXAMPLES)
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. Hopper-v4")
    p.add_argument("--agent", default=None, metavar="dt|tt|bc|td3|sac|ppo|random|NAME|PATH",
                   help="a zoo agent of the env (NAME: any name its preset lists, e.g. dt-medium-expert), the "
                        "random baseline, or a saved agent folder / SB3 .zip (default: the env's default zoo agent)")
    p.add_argument("--episodes", type=positive_int, default=None, metavar="N",
                   help=f"episodes to score (default: {_preset_default('episodes', DEFAULT_EPISODES)})")
    p.add_argument("--seed", type=non_negative_int, default=None, metavar="SEED",
                   help=f"episode i uses seed SEED+i (default: {_preset_default('seed', DEFAULT_SEED)})")
    p.add_argument("--n-envs", type=positive_int, default=None, metavar="N",
                   help=f"envs stepped together (default: {_preset_default('n_envs', DEFAULT_N_ENVS)})")
    p.add_argument("--vectorization", choices=("sync", "async"), default="sync",
                   help="with --n-envs > 1: one process (sync) or a subprocess per env (async)")
    p.add_argument("--max-episode-steps", type=positive_int, default=None, metavar="N",
                   help="cut episodes after N steps")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=True,
                   help="record a video (default: on)")
    p.add_argument("--record", choices=("first", "best", "worst", "all"), default="first",
                   help="which evaluated episodes to record (default: first)")
    p.add_argument("--video-dir", default="videos", metavar="FOLDER",
                   help="folder for videos (default: videos/, which a source checkout's .gitignore covers)")
    p.add_argument("--video-size", type=frame_size, default=None, metavar="WxH",
                   help=f"frame size for envs that take one (default: {_preset_default('video_size', '480x480')})")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                   help="draw step, return so far and the DT return-to-go target on the video (default: on)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all results as JSON to PATH")
    p.add_argument("--fast-render", action=argparse.BooleanOptionalAction, default=None,
                   help="MuJoCo envs: no shadows or reflections (about 3x faster frames with software OpenGL; "
                        f"default: {_preset_default('fast_render', 'off')})")
    p.add_argument("--device", default="auto", help="torch device for network agents (default: auto)")
    p.add_argument("--planner", nargs="+", default=None, metavar="PRESET|KEY=VALUE",
                   help="TT agents: a planner preset (paper, cpu, greedy) and/or settings on top of the agent's "
                        "own, e.g. --planner beam_width=32 plan_freq=1, or --planner cpu k_act=1 cdf_act=None")
    return p


def _preset_default(key: str, fallback: object) -> str:
    """``the env preset's (Hopper-v4: 5), else 10``: what each zoo env's preset.json sets ``eval.KEY`` to."""
    from seqpolicy.zoo import ZooError, load_preset, zoo_env_ids

    values = []
    for env_id in zoo_env_ids():
        try:
            value = load_preset(env_id).eval.get(key)
        except ZooError:  # an unreadable preset is reported when that env is evaluated
            continue
        if value is not None:
            values.append(f"{env_id}: {str(value).lower() if isinstance(value, bool) else value}")
    return f"the env preset's value ({', '.join(values)}), else {fallback}" if values else str(fallback)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.evaluation.compare import results_table
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.zoo import ZooError, get_agent, load_preset

    check_output(args.json, "--json")  # fail before spending time on the evaluation
    if args.video:
        from seqpolicy.evaluation.video import DEFAULT_SIZE, record_video, setup_headless

        setup_headless()  # before anything imports MuJoCo
        check_output(args.video_dir, "--video-dir", folder=True)
    try:
        preset_eval = load_preset(args.env).eval
    except ZooError:
        preset_eval = {}
    episodes = args.episodes or int(preset_eval.get("episodes", DEFAULT_EPISODES))
    seed = args.seed if args.seed is not None else int(preset_eval.get("seed", DEFAULT_SEED))
    n_envs = args.n_envs or min(int(preset_eval.get("n_envs", DEFAULT_N_ENVS)), episodes)
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
                      max_episode_steps=args.max_episode_steps, progress="auto")
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
