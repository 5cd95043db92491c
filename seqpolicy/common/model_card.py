"""Hugging Face model cards (an agent folder's README.md) generated from a zoo agent's JSON card.

The YAML header carries the Hub's ``model-index`` metadata the way RL model cards do (Stable-Baselines3's on
the Hub among them): the task is ``reinforcement-learning``, the "dataset" of the result is the env, the metric
is ``mean_reward`` as ``"mean +/- std"``; the offline dataset the agent was trained on goes to ``datasets``.
With it, an agent folder written by ``agent.save()`` (DT and TT folders are also transformers folders) can be
uploaded to the Hub as it is. Plain text only: no Hub library and no network are needed to write one.

Example:
    >>> card = {"name": "dt", "artifact": "dt-medium", "kind": "dt", "dataset": "seqpolicy/hopper-v4/medium-v0",
    ...         "evaluation": {"episodes": 100, "seeds": "0-99", "mean": 1557.2, "std": 292.0,
    ...                        "ci95": [1501.3, 1615.6]}}
    >>> model_card(card, "Hopper-v4").splitlines()[0]
    '---'
"""

from __future__ import annotations

import json
from typing import Any

KIND_NAMES = {"dt": "Decision Transformer", "tt": "Trajectory Transformer", "bc": "Behaviour cloning (MLP)"}
KIND_TAGS = {"dt": "decision-transformer", "tt": "trajectory-transformer", "bc": "behavior-cloning"}
TRANSFORMERS_CLASSES = {  # the transformers class that loads a folder of this kind (format-2 artifacts)
    "dt": ("transformers", "DecisionTransformerModel", ""),
    "tt": ("transformers.models.deprecated.trajectory_transformer", "TrajectoryTransformerModel", ", transformers < 5"),
}


def _q(value: Any) -> str:
    """A YAML scalar: strings double-quoted (JSON strings are valid YAML), numbers as they are."""
    return json.dumps(value)


def model_card(card: dict, env_id: str) -> str:
    """The README.md (YAML metadata + Markdown) of a zoo agent folder, from its JSON card.

    Args:
        card: the agent's card (``envs/<EnvId>/<artifact>/card.json``): ``name``, ``artifact``, ``kind``,
            ``dataset``, ``evaluation`` (``mean``, ``std``, ``episodes``, ``seeds``, ``ci95``, optionally
            ``d4rl_normalized``), and optionally ``command``, ``then``, ``train_steps``, ``train_wall_time_s``,
            ``trained_on``, ``target_return``, ``hyperparameters``, ``notes``, ``prediction_report`` (a TT's
            ``seqpolicy-tt-report``: ``table``, ``command``, ``data``, optionally ``notes``).
        env_id: the Gymnasium env the agent was evaluated in.
    """
    kind, ev, dataset = card.get("kind"), card["evaluation"], card.get("dataset")
    what = KIND_NAMES.get(kind, kind or "agent")
    reward = f"{ev['mean']:.2f} +/- {ev['std']:.2f}"
    lines = ["---", "library_name: seqpolicy", "tags:"]
    lines += [f"- {_q(t)}" for t in ("reinforcement-learning", "offline-reinforcement-learning",
                                    *([KIND_TAGS[kind]] if kind in KIND_TAGS else []), "gymnasium", env_id)]
    if dataset:
        lines += ["datasets:", f"- {_q(dataset)}"]
    title = f"{what} ({card['name']})"
    lines += ["model-index:", f"- name: {_q(title)}", "  results:",
              "  - task:", "      type: reinforcement-learning", "      name: reinforcement-learning",
              "    dataset:", f"      name: {_q(env_id)}", f"      type: {_q(env_id)}",
              "    metrics:", "    - type: mean_reward", f"      value: {_q(reward)}", "      name: mean_reward",
              "      verified: false"]
    if ev.get("d4rl_normalized") is not None:
        lines += ["    - type: d4rl_normalized_score", f"      value: {round(ev['d4rl_normalized'], 2)}",
                  "      name: D4RL-normalised score", "      verified: false"]
    lines += ["---", "", f"# {what} on {env_id} (seqpolicy zoo: `{card['name']}`)", ""]
    trained = f"trained offline on the Minari dataset `{dataset}`" if dataset else "trained"
    lines += [f"A {what} {trained} with seqpolicy, which runs it as a drop-in Gymnasium agent "
              "(`pip install seqpolicy`).", ""]
    lines += ["| | |", "| --- | --- |", f"| env | `{env_id}` |",
              f"| return | {ev['mean']:.1f} +- {ev['std']:.1f} over {ev['episodes']} episodes (seeds {ev['seeds']}), "
              f"95% CI {ev['ci95'][0]:.1f} to {ev['ci95'][1]:.1f} |"]
    if ev.get("d4rl_normalized") is not None:
        lo, hi = ev.get("d4rl_normalized_ci95") or (None, None)
        ci = f" (95% CI {lo:.1f} to {hi:.1f})" if lo is not None else ""
        lines.append(f"| D4RL-normalised score | {ev['d4rl_normalized']:.1f}{ci} |")
    if dataset:
        lines.append(f"| dataset | `{dataset}` |")
    if card.get("target_return") is not None:
        lines.append(f"| target return | {card['target_return']:g} |")
    context = (card.get("hyperparameters") or {}).get("context_length")
    if kind == "dt" and context:
        lines.append(f"| context length | {context} |")
    if card.get("train_steps"):
        wall = f", {card['train_wall_time_s'] / 60:.0f} min" if card.get("train_wall_time_s") else ""
        on = f" on {card['trained_on']}" if card.get("trained_on") else ""
        lines.append(f"| training | {card['train_steps']} steps{wall}{on} |")
    lines += ["", "## Use", "", "```python", "import seqpolicy", "",
              f'agent = seqpolicy.load_agent("{card["artifact"]}")  # this folder',
              f'print(seqpolicy.evaluate(agent, "{env_id}", n_episodes=10).summary())', "```", "",
              f"or `seqpolicy-eval --env {env_id} --agent {card['artifact']}`."]
    if kind in TRANSFORMERS_CLASSES:
        module, cls, version = TRANSFORMERS_CLASSES[kind]
        keeps = ("observation statistics, return scale, context length and target return" if kind == "dt"
                 else "discretizer thresholds and planner settings")
        lines += ["", f"The folder is also a `transformers` folder (`{cls}`{version}); the {keeps} an agent needs "
                  "are in `agent.json`:", "", "```python", f"from {module} import {cls}", "",
                  f'model = {cls}.from_pretrained("{card["artifact"]}")', "```"]
    report = card.get("prediction_report")
    if report:
        lines += ["", "## Next-token prediction", "", report["table"], "", f"`{report['command']}`: {report['data']}."]
        if report.get("notes"):
            lines += ["", report["notes"]]
    lines += ["", "## How it was made", ""]
    if card.get("command"):
        lines += ["```", card["command"], *(card.get("then") or []), "```", ""]
    if ev.get("command"):
        lines += [f"Evaluation: `{ev['command']}`" + (f", with {_versions(ev['versions'])}" if ev.get("versions")
                                                      else "") + ".", ""]
    if card.get("notes"):
        lines += ["Notes: " + card["notes"], ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())
