"""Training recipes: each trainer's named, complete sets of hyperparameters (``seqpolicy-train dt --recipe cpu``).

Every trainer has a ``paper`` recipe (its config's defaults: the paper's settings) and others sized for a purpose
(``cpu``: a CPU in hours; ``pointreach``: the toy env's tests and examples). :func:`recipe` is the one way to look
one up; a recipe is a frozen config, so ``recipe("dt", "cpu", max_steps=5)`` or ``dataclasses.replace`` changes
single fields.

Example:
    >>> recipe("dt", "cpu").hidden_size
    64
    >>> sorted(RECIPES["tt"])
    ['cpu', 'paper', 'pointreach']

Names. "Preset" used to name four things; since 0.2 each has its own:

- a training recipe: here (``RECIPES``, :func:`recipe`; ``seqpolicy-train --recipe NAME``);
- a planner search: the TT planner's named settings (``seqpolicy.agents.tt.planner.SEARCHES``,
  ``PlannerConfig.search(name)``; ``seqpolicy-eval --planner NAME``, ``seqpolicy-train tt --planner NAME``);
- an env's zoo manifest: what ``envs/<EnvId>/manifest.json`` lists (``seqpolicy.zoo.EnvManifest``,
  ``load_manifest(env_id)``; the file was ``preset.json``, still read where it is the only one).

The old names stay for one release (removed in 0.3): ``seqpolicy-train --preset NAME``, each trainer module's
``PRESETS`` (where the recipes are still defined: ``RECIPES[trainer]`` is that very dict),
``TTTrainConfig.preset(name)``, ``PlannerConfig.preset``, the planner's ``PRESETS``, ``zoo.EnvPreset``,
``zoo.load_preset`` and ``zoo.PRESET_FILE``.
"""

from __future__ import annotations

from dataclasses import replace

from seqpolicy.training import bc, dt, odt, tt
from seqpolicy.training.settings import RunSettings

RECIPES: dict[str, dict[str, RunSettings]] = {"dt": dt.PRESETS, "tt": tt.PRESETS, "bc": bc.PRESETS,
                                              "odt": odt.PRESETS}
"""Trainer name (dt, tt, bc, odt) -> recipe name -> its config (a DTTrainConfig, TTTrainConfig, ...)."""


def recipe(trainer: str, name: str = "paper", **overrides) -> RunSettings:
    """The recipe ``name`` of ``trainer`` (dt, tt, bc or odt), with ``overrides`` replacing single fields.

    Raises:
        ValueError: an unknown trainer or recipe (the message lists the known ones), or an override the
            config refuses.
    """
    if trainer not in RECIPES:
        raise ValueError(f"Unknown trainer {trainer!r}; choose one of {', '.join(RECIPES)}.")
    if name not in RECIPES[trainer]:
        raise ValueError(f"Unknown {trainer} training recipe {name!r} (a training preset in 0.1); choose one of "
                         f"{', '.join(sorted(RECIPES[trainer]))}.")
    return replace(RECIPES[trainer][name], **overrides)
