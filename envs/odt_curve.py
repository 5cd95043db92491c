"""The Online DT's learning curve beside SB3 TD3 learning the same env from scratch, over the same env steps.

    python envs/odt_curve.py --odt-run runs/zoo/odt-medium --td3-run runs/hopper-v4-td3 \
        --out envs/Hopper-v4/research/odt-curve        # from the two run folders: curve.json and curve.png
    python envs/odt_curve.py --out envs/Hopper-v4/research/odt-curve  # redraw curve.png from the committed curve.json
    python envs/odt_curve.py --also "exploring at 0.5 x std=runs/zoo/odt-noise05" \
        --out envs/Hopper-v4/research/odt-curve        # other runs beside the committed zoo and TD3 lines

``--also LABEL=RUN`` (repeatable) draws other ODT runs beside the zoo's; without ``--odt-run`` (or without
``--td3-run``) the committed lines in OUT/curve.json are kept, and an ``--also`` run missing from this machine keeps
its committed points.

Both curves are held-out returns: the ODT run's periodic evaluations (``eval/return`` in its ``log.csv``: mean
actions at the declared target, seeds 10000 on, ``--eval-episodes`` each) against its online env steps (the
end of pretraining is at 0), and the TD3 run's checkpoint evaluations (``checkpoints/step_*.json``: the
deterministic policy, seeds 10000 on) against its env steps (counting the 10k uniform-random warm-up), up to the
ODT run's online budget. Nothing is evaluated here; curve.json keeps the points so the chart can be redrawn
without the run folders, which are not committed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def odt_points(run: Path) -> tuple[list[dict], dict]:
    """Held-out evaluations of an ODT run against online env steps (pretraining's last one at 0)."""
    rows = list(csv.DictReader((run / "log.csv").open()))
    points, env_steps, online, pretrain_eval = [], 0, False, None
    for row in rows:  # an evaluation is its own row, after the iteration's row of the same step
        if row.get("online/env_steps"):
            env_steps, online = int(float(row["online/env_steps"])), True
        if not row.get("eval/return"):
            continue
        point = {"step": int(row["step"]), "env_steps": env_steps, "return": float(row["eval/return"]),
                 "std": float(row["eval/return_std"])}
        if online:
            points.append(point)
        else:
            pretrain_eval = point  # the latest pretraining evaluation: the online phase's start
    if pretrain_eval is not None:
        points.insert(0, pretrain_eval)
    config = json.loads((run / "agent" / "agent.json").read_text())["info"]["train_config"] \
        if (run / "agent" / "agent.json").is_file() else {}
    return points, config


def td3_points(run: Path, max_env_steps: int | None) -> list[dict]:
    """Checkpoint evaluations of a seqpolicy-baseline run, up to ``max_env_steps``."""
    points = []
    for path in sorted((run / "checkpoints").glob("step_*.json")):
        doc = json.loads(path.read_text())
        if max_env_steps is None or doc["step"] <= max_env_steps:
            points.append({"env_steps": doc["step"], "return": doc["eval_return_mean"],
                           "std": doc["eval_return_std"], "wall_s": doc["wall_s"]})
    return points


def _also_line(parser: argparse.ArgumentParser, spec: str, saved: dict | None) -> dict:
    """The line of ``--also LABEL=RUN``: from RUN's log.csv, or the committed curve.json's line of that run."""
    label, sep, run = spec.partition("=")
    if not sep or not label.strip():
        parser.error(f"--also {spec!r}: expected LABEL=RUN")
    if (Path(run) / "log.csv").is_file():
        return {"label": label.strip(), "run": run, "points": odt_points(Path(run))[0]}
    name = run.rstrip("/").split("/")[-1]
    kept = [line for line in ([saved["odt"]] + saved.get("also", []) if saved else [])
            if line.get("run", "").rstrip("/").split("/")[-1] == name]
    if not kept:
        parser.error(f"--also {spec!r}: {Path(run) / 'log.csv'} does not exist and OUT/curve.json has no such run")
    return {**kept[0], "label": label.strip()}


def plot(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    lines = [(curve["odt"], curve["odt"].get("label", "Online DT (pretrained on medium, then online)"), "tab:blue"),
             (curve["td3"], "SB3 TD3 from scratch", "tab:orange")]
    colours = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:grey")
    lines += [(other, f"Online DT: {other['label']}", colours[i % len(colours)])
              for i, other in enumerate(curve.get("also", []))]
    for line, label, colour in lines:
        xs = [p["env_steps"] / 1000 for p in line["points"]]
        ys = [p["return"] for p in line["points"]]
        ax.plot(xs, ys, marker="o", ms=3, label=label, color=colour)
    if curve.get("data_mean_return") is not None:
        ax.axhline(curve["data_mean_return"], ls=":", color="grey", label="medium data's mean return")
    ax.set_xlabel("online env steps (thousands)")
    ax.set_ylabel(f"return, {curve['eval_episodes']} held-out episodes")
    ax.set_title(f"{curve['env_id']}: Online DT from an offline start against TD3 from scratch")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--odt-run", type=Path, help="the seqpolicy-train odt run folder (log.csv, agent/)")
    p.add_argument("--td3-run", type=Path, help="the seqpolicy-baseline train run folder (checkpoints/)")
    p.add_argument("--also", action="append", default=[], metavar="LABEL=RUN",
                   help="another ODT run folder to draw beside the zoo's, with its label (repeatable)")
    p.add_argument("--odt-label", default=None, help="the zoo run's label in the legend")
    p.add_argument("--env", default="Hopper-v4")
    p.add_argument("--data-mean-return", type=float, default=None,
                   help="draw the dataset's mean episode return as a line (default: from the env's medium card)")
    p.add_argument("--out", type=Path, required=True, help="folder for curve.json and curve.png")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    saved = json.loads((args.out / "curve.json").read_text()) if (args.out / "curve.json").is_file() else None
    if args.odt_run is None:
        if args.td3_run is not None:
            p.error("--td3-run goes with --odt-run (without --odt-run the zoo's and TD3's lines come from "
                    "OUT/curve.json)")
        if saved is None:
            p.error(f"{args.out / 'curve.json'} does not exist: pass --odt-run and --td3-run to make it")
        curve = saved
        if args.also:  # other runs beside the committed lines
            curve["also"] = [_also_line(p, spec, saved) for spec in args.also]
            (args.out / "curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    else:
        if args.td3_run is None and (saved is None or not saved.get("td3", {}).get("points")):
            p.error(f"no --td3-run and no TD3 points in {args.out / 'curve.json'} to keep")
        odt, config = odt_points(args.odt_run)
        if len(odt) < 2:
            p.error(f"{args.odt_run / 'log.csv'} has fewer than 2 evaluations: is the run online yet?")
        budget = config.get("online_steps") or max(pt["env_steps"] for pt in odt)
        data_mean = args.data_mean_return
        card = Path(__file__).parent / args.env / "datasets" / "medium.json"
        if data_mean is None and card.is_file():
            data_mean = json.loads(card.read_text())["return"]["mean"]
        also = [_also_line(p, spec, saved) for spec in args.also]
        td3 = ({"run": str(args.td3_run), "points": td3_points(args.td3_run, budget)} if args.td3_run is not None
               else saved["td3"])
        odt_line = {"run": str(args.odt_run), "points": odt}
        if args.odt_label:
            odt_line["label"] = args.odt_label
        curve = {"env_id": args.env, "eval_episodes": config.get("eval_episodes", 10), "eval_seed": 10000,
                 "online_budget": budget, "data_mean_return": data_mean, "odt": odt_line, "td3": td3, "also": also}
        (args.out / "curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    plot(curve, args.out / "curve.png")
    print(f"wrote {args.out / 'curve.png'} ({len(curve['odt']['points'])} ODT and {len(curve['td3']['points'])} "
          "TD3 points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
