"""Human-readable summaries of a :class:`Trajectories` (what ``seqpolicy-dataset info`` prints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqpolicy.data.trajectories import Trajectories


def dataset_info(data: Trajectories) -> dict[str, Any]:
    """Statistics and provenance of a dataset, as JSON-serialisable data.

    Returns:
        env id, dataset id, source, episode/transition counts, return and length statistics, how many
        episodes terminated vs were truncated, observation mean/std and action min/max per dimension, and
        the collection metadata seqpolicy stored (policy, seeds, ...), if any.
    """
    s = data.stats()
    acts = np.concatenate([ep.actions for ep in data.episodes])
    meta = data.metadata or {}
    provenance = meta.get("minari", {}).get("seqpolicy") or {k: v for k, v in meta.items() if k != "minari"}
    return {
        "dataset_id": data.dataset_id,
        "env_id": data.env_id,
        "source": meta.get("source", "seqpolicy"),
        "obs_dim": data.obs_dim,
        "act_dim": data.act_dim,
        "episodes": s.n_episodes,
        "transitions": s.n_transitions,
        "terminated": s.n_terminated,
        "truncated": s.n_episodes - s.n_terminated,
        "return": {"min": s.return_min, "mean": s.return_mean, "std": float(data.returns.std()),
                   "max": s.return_max},
        "length": {"min": s.length_min, "mean": s.length_mean, "max": s.length_max},
        "obs_mean": [round(float(x), 4) for x in s.obs_mean],
        "obs_std": [round(float(x), 4) for x in s.obs_std],
        "action_min": [round(float(x), 4) for x in acts.min(0)],
        "action_max": [round(float(x), 4) for x in acts.max(0)],
        "provenance": provenance,
    }


def format_info(info: dict[str, Any]) -> str:
    """The text form of :func:`dataset_info`."""
    r, n = info["return"], info["length"]
    lines = [
        f"dataset      {info['dataset_id']}  ({info['source']})",
        f"env          {info['env_id'] or 'unknown (pass --env to check sizes)'}",
        f"sizes        obs {info['obs_dim']}, action {info['act_dim']}",
        f"episodes     {info['episodes']} ({info['terminated']} terminated, {info['truncated']} truncated)",
        f"transitions  {info['transitions']}",
        f"return       min {r['min']:.2f}  mean {r['mean']:.2f}  std {r['std']:.2f}  max {r['max']:.2f}",
        f"length       min {n['min']}  mean {n['mean']:.1f}  max {n['max']}",
        f"obs mean     {_fmt(info['obs_mean'])}",
        f"obs std      {_fmt(info['obs_std'])}",
        f"action range {_fmt(info['action_min'])} .. {_fmt(info['action_max'])}",
    ]
    prov = info.get("provenance") or {}
    if prov:
        policy = prov.get("policy")
        if policy:
            lines.append(f"policy       {policy}")
        for key in ("seed", "action_noise", "command", "wall_s"):
            if key in prov:
                lines.append(f"{key:<12} {prov[key]}")
    return "\n".join(lines)


def _fmt(xs: list[float], limit: int = 8) -> str:
    body = " ".join(f"{x:.3g}" for x in xs[:limit])
    return f"[{body}{' ...' if len(xs) > limit else ''}]"
