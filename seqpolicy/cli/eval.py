"""``seqpolicy-eval``: score an agent on an env and record a video of it."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from seqpolicy.cli._common import (
    OneLineParser,
    add_env_mismatch_option,
    add_threads_option,
    apply_threads,
    check_output,
    frame_size,
    non_negative_int,
    positive_int,
    registered_env_id,
    run_cli,
)

if TYPE_CHECKING:
    from seqpolicy.evaluation.evaluate import EvalResult

PROG = "seqpolicy-eval"
DEFAULT_EPISODES, DEFAULT_N_ENVS, DEFAULT_SEED = 10, 1, 0  # for envs whose zoo manifest does not set them

EXAMPLES = """\
examples:
  # the env's default zoo agent (envs/Hopper-v4/) on its manifest's episodes, a video in videos/
  seqpolicy-eval --env Hopper-v4

  # the random baseline, 100 episodes over 8 envs, no video, results as JSON
  seqpolicy-eval --env Hopper-v4 --agent random --episodes 100 --n-envs 8 --no-video \\
      --json random.json

  # an agent you trained, recording its best and worst episodes
  seqpolicy-eval --env Hopper-v4 --agent runs/hopper-dt/agent --record best --episodes 20
  seqpolicy-eval --env Hopper-v4 --agent runs/hopper-dt/agent --record worst --video-size 320x320

  # the zoo's TT with a wider, every-step search
  seqpolicy-eval --env Hopper-v4 --agent tt --planner beam_width=32 plan_freq=1 --no-video

  # the zoo's TT on one process only (by default its episodes are shared among a worker per core)
  seqpolicy-eval --env Hopper-v4 --agent tt --workers 1

  # every training seed of the zoo's DT on the same 100 episodes: per-seed means, their mean
  seqpolicy-eval --env Hopper-v4 --agent dt --training-seeds all --episodes 100 --no-video \\
      --json dt-seeds.json

Episode i is reset with seed SEED + i, so two runs with the same options score the same episodes.
Videos are rendered headless (MUJOCO_GL=egl, else osmesa; a MUJOCO_GL you set wins).
Errors are one line; SEQPOLICY_DEBUG=1 shows the full traceback.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Evaluate an agent on a Gymnasium env: per-episode returns, mean, "
                      "95% bootstrap CI, D4RL-normalised score, and a video.", epilog=EXAMPLES)
    p.add_argument("--env", required=True, type=registered_env_id, help="Gymnasium env id, e.g. Hopper-v4")
    p.add_argument("--agent", default=None, metavar="dt|tt|bc|td3|sac|ppo|random|NAME|PATH",
                   help="a zoo agent of the env (NAME: any name its manifest lists, e.g. dt-medium-expert), the "
                        "random baseline, or a saved agent folder / SB3 .zip (default: the env's default zoo agent)")
    p.add_argument("--episodes", type=positive_int, default=None, metavar="N",
                   help=f"episodes to score (default: {_manifest_default('episodes', DEFAULT_EPISODES)})")
    p.add_argument("--seed", type=non_negative_int, default=None, metavar="SEED",
                   help=f"episode i uses seed SEED+i (default: {_manifest_default('seed', DEFAULT_SEED)})")
    p.add_argument("--n-envs", type=positive_int, default=None, metavar="N",
                   help=f"envs stepped together (default: {_manifest_default('n_envs', DEFAULT_N_ENVS)})")
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
                   help=f"frame size for envs that take one (default: {_manifest_default('video_size', '320x320')})")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                   help="draw step, return so far and the DT return-to-go target on the video (default: on)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all results as JSON to PATH")
    p.add_argument("--fast-render", action=argparse.BooleanOptionalAction, default=None,
                   help="MuJoCo envs: no shadows or reflections (about 3x faster frames with software OpenGL; "
                        f"default: {_manifest_default('fast_render', 'on')})")
    p.add_argument("--device", default="auto", help="torch device for network agents (default: auto)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="what computes the agent's network: torch (default) or onnxruntime (CPU): for a DT or BC "
                        "folder exported with seqpolicy-export onnx (2x faster act() at batch 1 here); for a TT its "
                        "planner's model calls, traced when loaded (opt-in: they round differently, so sampled "
                        "plans can differ from torch's). The result's conditions record it")
    p.add_argument("--planner", nargs="+", default=None, metavar="SEARCH|KEY=VALUE",
                   help="TT agents: a named planner search (paper, cpu, greedy, pointreach; called planner presets "
                        "in 0.1) and/or settings on top of the agent's own, e.g. --planner beam_width=32 plan_freq=1, "
                        "or --planner cpu k_act=1 cdf_act=None")
    p.add_argument("--training-seeds", nargs="+", type=training_seed_arg, default=None, metavar="all|N",
                   help="evaluate these training seeds of the zoo agent (all: every one the zoo holds; see "
                        "seqpolicy.zoo) on the same episodes; prints each seed's mean and the mean over seeds with "
                        "a 95%% CI from a stratified bootstrap (seeds, then episodes within each); labels get -seedN")
    p.add_argument("--label", default=None, metavar="NAME",
                   help="the agent's name in the table, --json and video file names (default: its zoo name, or "
                        "a saved agent's folder, e.g. x/agent for runs/x/agent)")
    p.add_argument("--workers", type=workers_arg, default="auto", metavar="N|auto",
                   help="processes that share the episodes, each acting on --threads threads (consecutive seed "
                        "ranges, merged into one result): auto (default) uses every core for a Trajectory "
                        "Transformer, whose planner pays a process start many times over, and 1 for other agents "
                        "and on a GPU. Unlike more threads, processes keep their speed beside another job")
    add_env_mismatch_option(p)
    add_threads_option(p)
    return p


def workers_arg(text: str) -> str | int:
    """``auto`` or a number of worker processes (an integer >= 1)."""
    return "auto" if text == "auto" else positive_int(text)


def training_seed_arg(text: str) -> str | int:
    """``all`` or a training seed (an integer >= 0)."""
    return "all" if text == "all" else non_negative_int(text)


def _manifest_default(key: str, fallback: object) -> str:
    """``the env manifest's value (Hopper-v4: 5), else 10``: what each zoo env's manifest sets ``eval.KEY`` to (the
    help keeps saying "env preset" for now: tests/test_cli_errors.py holds that wording)."""
    from seqpolicy.zoo import ZooError, load_manifest, zoo_env_ids

    values = []
    for env_id in zoo_env_ids():
        try:
            value = load_manifest(env_id).eval.get(key)
        except ZooError:  # an unreadable manifest is reported when that env is evaluated
            continue
        if value is not None:
            values.append(f"{env_id}: {str(value).lower() if isinstance(value, bool) else value}")
    return f"the env manifest's value ({', '.join(values)}), else {fallback}" if values else str(fallback)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_threads(args.threads)
    return run_cli(PROG, lambda: _run(args), on_stop=lambda: _stopped(args))


def _stopped(args: argparse.Namespace) -> str:
    """What a stopped run leaves: finished videos are kept, the one being recorded is deleted (VideoWriter)."""
    kept = f"finished videos are kept in {args.video_dir}/, no partial one is left" if args.video else ""
    unwritten = f"{args.json} was not written" if args.json else ""
    return "; ".join(part for part in (kept, unwritten) if part)


def _run(args: argparse.Namespace) -> int:
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.evaluation.compare import results_table
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.zoo import ZooError, agent_label, load_manifest

    check_output(args.json, "--json")  # fail before spending time on the evaluation
    if args.video:
        from seqpolicy.evaluation.video import DEFAULT_SIZE, record_video, setup_headless

        setup_headless()  # before anything imports MuJoCo
        check_output(args.video_dir, "--video-dir", folder=True)
    try:
        zoo_eval = load_manifest(args.env).eval
    except ZooError:
        zoo_eval = {}
    episodes = args.episodes or int(zoo_eval.get("episodes", DEFAULT_EPISODES))
    seed = args.seed if args.seed is not None else int(zoo_eval.get("seed", DEFAULT_SEED))
    n_envs = args.n_envs or min(int(zoo_eval.get("n_envs", DEFAULT_N_ENVS)), episodes)
    fast = args.fast_render if args.fast_render is not None else bool(zoo_eval.get("fast_render", True))
    label = args.label or agent_label(args.env, args.agent)
    runs = []  # (training seed, label, result, videos); one run with training seed None without --training-seeds
    for training_seed in _training_seeds(args.env, args.agent, args.training_seeds):
        load = functools.partial(load_eval_agent, args.env, args.agent, args.device, seed, training_seed,
                                 args.runtime, tuple(args.planner or ()))
        agent = load()
        if args.planner:
            print("planner: " + ", ".join(f"{k}={v}" for k, v in agent.planner.to_dict().items()))
        run_label = label if training_seed is None else f"{label}-seed{training_seed}"
        workers = choose_workers(args.workers, agent, episodes, args.vectorization, args.threads or 1)
        if workers > 1:
            from seqpolicy.common.threads import acting_threads
            from seqpolicy.evaluation.parallel import evaluate_parallel

            print(f"evaluating in {workers} worker processes ({episodes} episodes in consecutive seed ranges)",
                  flush=True)
            result = evaluate_parallel(load, args.env, episodes, seed, n_envs, workers,
                                       threads=acting_threads(getattr(agent, "threads", None)),
                                       max_episode_steps=args.max_episode_steps,
                                       allow_env_mismatch=args.allow_env_mismatch, progress="auto")
        else:
            result = evaluate(agent, args.env, episodes, seed, n_envs, vectorization=args.vectorization,
                              max_episode_steps=args.max_episode_steps, allow_env_mismatch=args.allow_env_mismatch,
                              progress="auto")
        print(results_table({run_label: result}))
        shown = ", ".join(f"{r:.1f}" for r in result.returns[:20])
        more = ""
        if result.n_episodes > 20:
            more = f", ... ({result.n_episodes} in all{'' if args.json else '; see --json'})"
        print(f"returns per episode: {shown}{more}")
        threads = result.conditions.get("threads")
        acting = f", acting on {threads} thread{'s' if threads != 1 else ''}" if threads else ""
        print(f"{result.env_steps} env steps in {result.wall_time_s:.1f} s ({result.steps_per_second:.0f} steps/s"
              f"{acting})")
        videos = []
        if args.video:
            print(f"recording ({args.record}) into {args.video_dir}/ ...", flush=True)
            videos = record_video(agent, args.env, args.video_dir, result=result, record=args.record,
                                  size=args.video_size or _manifest_size(zoo_eval) or DEFAULT_SIZE,
                                  overlay=args.overlay, fast=fast, label=run_label,
                                  max_episode_steps=args.max_episode_steps,
                                  allow_env_mismatch=args.allow_env_mismatch)
            for v in videos:
                (recorded,) = v.returns.values()
                print(f"video: {v.path} (episode {v.episode}, seed {v.seed}, {v.frames} frames; return "
                      f"{recorded:.1f}, scored {v.evaluated_return:.1f})")
        runs.append((training_seed, run_label, result, videos))
    planner = getattr(agent, "planner", None)
    planner = planner.to_dict() if planner is not None else None
    if args.training_seeds is None:
        doc = {"agent": args.agent, "label": label, "evaluation": result.to_dict(), "planner": planner,
               "videos": [v.to_dict() for v in videos]}
    else:
        summary = across_seed_summary({s: r for s, _, r, _ in runs})
        print(format_across_seeds(summary))
        doc = {"agent": args.agent, "label": label, "planner": planner, "training_seeds": [s for s, *_ in runs],
               "evaluations": [{"training_seed": s, "label": name, "evaluation": r.to_dict(),
                                "videos": [v.to_dict() for v in vids]} for s, name, r, vids in runs],
               "across_seeds": summary}
    if args.json:
        atomic_write_json(args.json, doc)
        print(f"json: {args.json}")
    return 0


def load_eval_agent(env_id: str, agent: str | None, device: str, seed: int, training_seed: int | None,
                    runtime: str, planner: tuple[str, ...] = ()) -> Any:
    """The agent ``seqpolicy-eval`` evaluates: ``seqpolicy.zoo.get_agent``'s, with ``--planner`` settings on top
    (a module-level function, so worker processes can make it too)."""
    from seqpolicy.zoo import get_agent

    made = get_agent(env_id, agent, device=device, seed=seed, training_seed=training_seed, runtime=runtime)
    if planner:
        from seqpolicy.agents.tt import TrajectoryTransformerAgent
        from seqpolicy.agents.tt.planner import planner_from_args

        if not isinstance(made, TrajectoryTransformerAgent):
            raise ValueError(f"--planner applies to Trajectory Transformer agents; "
                             f"{agent or 'the default agent'} is a {type(made).__name__}.")
        made.planner = planner_from_args(made.planner, list(planner))
    return made


def choose_workers(asked: str | int, agent: Any, episodes: int, vectorization: str, threads: int = 1) -> int:
    """``--workers``: a number as given (at most one per episode); ``auto``: for a Trajectory Transformer on the
    CPU (tens of ms per env step against a few seconds to start a worker), as many as the usable cores hold at
    ``threads`` threads each; 1 for other agents."""
    if asked != "auto":
        if asked > 1 and vectorization == "async":
            raise ValueError("--workers and --vectorization async both start processes: choose one.")
        return min(int(asked), episodes)
    from seqpolicy.evaluation.parallel import usable_cores

    device = str(getattr(agent, "device", "cpu"))
    if getattr(agent, "kind", None) != "tt" or not device.startswith("cpu") or vectorization == "async":
        return 1
    return max(1, min(usable_cores() // threads, episodes))


def _training_seeds(env_id: str, agent: str | None, asked: list[str | int] | None) -> list[int | None]:
    """The training seeds --training-seeds asks for, all checked against the zoo before any is evaluated; [None]
    without the option (the agent as it is)."""
    from seqpolicy.zoo import ZooError, training_seeds

    if asked is None:
        return [None]
    if "all" in asked and len(asked) > 1:
        raise ValueError(f"--training-seeds takes 'all' or seed numbers, not both (got {' '.join(map(str, asked))}).")
    held = training_seeds(env_id, agent)
    if asked == ["all"]:
        return list(held)
    missing = sorted(set(asked) - set(held))
    if missing:
        raise ZooError(f"--training-seeds: the zoo has no training seed {', '.join(map(str, missing))} of "
                       f"{agent or 'the default agent'} for {env_id}; it has {', '.join(map(str, held))} "
                       "(--training-seeds all evaluates those).")
    return sorted(set(asked))


def across_seed_summary(results: Mapping[int, EvalResult]) -> dict:
    """The mean over training seeds of each seed's mean return (and D4RL-normalised score where the env has one),
    with stratified-bootstrap 95% CIs (:func:`seqpolicy.evaluation.aggregate.across_seeds`), from their
    :class:`~seqpolicy.evaluation.evaluate.EvalResult` by training seed."""
    from seqpolicy.evaluation.aggregate import across_seeds

    doc = {"return": across_seeds({s: r.returns for s, r in results.items()}).to_dict(), "normalized": None}
    if all(r.normalized for r in results.values()):
        doc["normalized"] = across_seeds({s: r.normalized["per_episode"] for s, r in results.items()}).to_dict()
    return doc


def format_across_seeds(summary: dict) -> str:
    """Lines for :func:`across_seed_summary`: each seed's mean, then the mean over seeds with its CI."""
    lines = []
    for key, what in (("return", "return"), ("normalized", "D4RL-normalised score")):
        s = summary[key]
        if s is None:
            continue
        per_seed = ", ".join(f"{seed}: {m:.1f}" for seed, m in zip(s["seeds"], s["seed_means"], strict=True))
        lines.append(f"{what} per training seed: {per_seed}")
        n = len(s["seeds"])
        how = ("one seed: episodes resampled, so it leaves out how seeds differ" if n == 1
               else "stratified bootstrap: seeds, then episodes within each")
        lines.append(f"{what} over {n} training seed{'s' if n > 1 else ''}: {s['mean']:.1f} "
                     f"(95% CI {s['ci'][0]:.1f} to {s['ci'][1]:.1f}; {how}, {s['n_resamples']} resamples)")
    return "\n".join(lines)


def _manifest_size(zoo_eval: dict) -> tuple[int, int] | None:
    size = zoo_eval.get("video_size")
    try:
        return frame_size(str(size)) if size else None
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"The env's zoo manifest's eval.video_size: {e}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
