"""``seqpolicy-compare``: several agents, one harness, the same seeds; table, JSON, chart, side-by-side video."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from seqpolicy.zoo import compare_settings

if TYPE_CHECKING:
    from seqpolicy.evaluation.evaluate import EvalResult

PROG = "seqpolicy-compare"
COMPARISON = "comparison"
"""The stem of the table, JSON and chart in --out (each agent's results are beside them, named by its label)."""

EXAMPLES = """\
examples:
  # every agent of the env's zoo (envs/Hopper-v4/manifest.json) and random, 20 episodes, seeds 0-19
  seqpolicy-compare --env Hopper-v4 --episodes 20

  # some of them, 100 episodes over 10 envs; --resume reuses agents finished before a crash
  seqpolicy-compare --env Hopper-v4 --agents dt tt td3 random --episodes 100 --n-envs 10 \\
      --out cmp --resume

  # your own agents (seqpolicy-train's folders), 8 envs at a time, and a side-by-side video
  seqpolicy-compare --env Hopper-v4 --agents runs/hopper-dt/agent runs/hopper-dt2/agent random \\
      --n-envs 8 --video

Writes comparison.md, comparison.json and comparison.png (mean and 95% bootstrap CI per agent) into
--out, and each agent's full results beside them, --out/<agent>.json, as soon as it is evaluated.
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Compare agents on one env with the same evaluation and seeds.",
                      epilog=EXAMPLES)
    p.add_argument("--env", required=True, type=registered_env_id, help="Gymnasium env id, e.g. Hopper-v4")
    p.add_argument("--agents", nargs="+", default=None, metavar="AGENT",
                   help="zoo names (dt tt bc td3 sac ppo, or any name the env's zoo manifest lists), random, or saved "
                        "agent paths (default: every agent of the env's zoo, then random)")
    p.add_argument("--episodes", type=positive_int, default=10, help="episodes per agent (default 10)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="episode i uses seed SEED+i (default 0)")
    p.add_argument("--n-envs", type=positive_int, default=1, help="envs stepped together (default 1)")
    p.add_argument("--max-episode-steps", type=positive_int, default=None, help="cut episodes after N steps")
    p.add_argument("--out", default=None, metavar="FOLDER",
                   help="output folder (default: comparisons/<env>_<time>, which a source checkout's .gitignore "
                        "covers)")
    p.add_argument("--resume", action="store_true",
                   help="reuse --out/<agent>.json of agents already evaluated with the same env, episodes, seed, "
                        "step limit and agent files (evaluate the rest; an older run's --out/results/<agent>.json "
                        "is read too)")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=False,
                   help="also record one video with the agents side by side on seed SEED (default: off)")
    p.add_argument("--video-dir", default="videos", metavar="FOLDER", help="folder for the video (default: videos/)")
    p.add_argument("--video-size", type=frame_size, default=None, metavar="WxH",
                   help="frame size of each panel (default 320x320)")
    p.add_argument("--fast-render", action=argparse.BooleanOptionalAction, default=True,
                   help="MuJoCo envs: no shadows or reflections (about 3x faster frames with software OpenGL; "
                        "default: on)")
    p.add_argument("--device", default="auto", help="torch device for network agents (default: auto)")
    add_env_mismatch_option(p)
    add_threads_option(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_threads(args.threads)
    out = Path(args.out or f"comparisons/{args.env.replace('/', '__')}_{time.strftime('%Y%m%d-%H%M%S')}")
    return run_cli(PROG, lambda: _run(args, out), on_stop=lambda: _stopped(out))


def _stopped(out: Path) -> str:
    """What a stopped run leaves: each agent's results, written (atomically) as soon as it was evaluated."""
    saved = sorted(p for p in out.glob("*.json") if p.name != f"{COMPARISON}.json")
    if not saved:
        return "no agent was evaluated to the end, nothing was saved"
    return (f"the results of {len(saved)} agent(s) evaluated to the end are saved in {out}; add "
            f"--out {out} --resume to evaluate the rest")


def _run(args: argparse.Namespace, out: Path) -> int:
    from seqpolicy.common.artifact import atomic_write_json
    from seqpolicy.evaluation.compare import Comparison
    from seqpolicy.evaluation.evaluate import evaluate
    from seqpolicy.zoo import get_agent, zoo_agent_names

    specs = args.agents or zoo_agent_names(args.env) + ["random"]
    if args.agents is None and len(specs) == 1:
        raise ValueError(f"{args.env} has no zoo agents (no envs/{args.env}/manifest.json listing any): name the "
                         "agents to compare with --agents.")
    if len(set(specs)) != len(specs):
        raise ValueError(f"--agents lists an agent twice: {' '.join(specs)}")
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out (the folder of the run to continue).")
    check_output(out, "--out", folder=True)
    if args.video:
        from seqpolicy.evaluation.video import DEFAULT_SIZE, record_side_by_side, setup_headless

        setup_headless()
        check_output(args.video_dir, "--video-dir", folder=True)
    labels = _labels(args.env, specs)
    if COMPARISON in labels.values():
        raise ValueError(f"An agent labelled {COMPARISON!r} would overwrite {COMPARISON}.json in --out: rename its "
                         "folder.")
    agents, results = {}, {}
    for i, spec in enumerate(specs, 1):
        label = labels[spec]
        saved = out / f"{label.replace('/', '__')}.json"
        settings = compare_settings(args.env, spec, args.episodes, args.seed, args.max_episode_steps)
        reused, source = None, saved
        for source in (saved, out / "results" / saved.name) if args.resume else ():  # results/: an older run's
            reused = _reusable(source, settings)
            if reused is not None:
                break
        if reused is not None:
            print(f"[{i}/{len(specs)}] {label}: reusing {source}", file=sys.stderr, flush=True)
            results[label] = reused
            continue
        print(f"[{i}/{len(specs)}] {label}: evaluating {args.episodes} episodes ...", file=sys.stderr, flush=True)
        agents[label] = get_agent(args.env, spec, device=args.device, seed=args.seed)
        result = evaluate(agents[label], args.env, args.episodes, args.seed, args.n_envs,
                          max_episode_steps=args.max_episode_steps, allow_env_mismatch=args.allow_env_mismatch,
                          progress="auto")
        atomic_write_json(saved, {**result.to_dict(), "compare_settings": settings})
        results[label] = result
    comparison = Comparison(env_id=next(iter(results.values())).env_id, results=results)
    paths = comparison.save(out, stem=COMPARISON)
    print(comparison.markdown())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if args.video:
        for spec in specs:
            if labels[spec] not in agents:
                agents[labels[spec]] = get_agent(args.env, spec, device=args.device, seed=args.seed)
        agents = {labels[spec]: agents[labels[spec]] for spec in specs}
        video = record_side_by_side(agents, args.env, args.video_dir, seed=args.seed,
                                    size=args.video_size or DEFAULT_SIZE, fast=args.fast_render,
                                    max_episode_steps=args.max_episode_steps,
                                    allow_env_mismatch=args.allow_env_mismatch)
        print(f"video: {video.path} ({video.frames} frames; returns "
              + ", ".join(f"{k} {v:.1f}" for k, v in video.returns.items()) + ")")
    return 0


def _reusable(path: Path, settings: dict) -> EvalResult | None:
    """The results saved in ``path`` if they were made with ``settings``, else None (evaluate the agent). A
    damaged file is not reused either, with a warning: it is written again."""
    import warnings

    from seqpolicy.evaluation.evaluate import EvalResult

    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        return EvalResult.from_dict(doc) if doc.get("compare_settings") == settings else None
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        warnings.warn(f"--resume: cannot read {path} ({e}); evaluating that agent again.", stacklevel=2)
        return None


def _labels(env: str, specs: list[str]) -> dict[str, str]:
    """Short table labels (:func:`seqpolicy.zoo.agent_label`: a path's last folder, with its parent when that is
    just ``agent``)."""
    from seqpolicy.zoo import agent_label

    labels = {spec: agent_label(env, spec) for spec in specs}
    if len(set(labels.values())) != len(specs):  # clashes: keep the full specs
        return {spec: spec for spec in specs}
    return labels


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
