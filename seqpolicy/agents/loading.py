"""Load any saved agent from its folder: the one place that maps an artifact's ``kind`` to its class."""

from __future__ import annotations

import importlib
import inspect
import json
import os
from typing import Any

from seqpolicy.common.artifact import CONFIG_FILE, HF_CONFIG_FILE, ArtifactError, resolve_agent_path

__all__ = ["AGENT_KINDS", "agent_kind", "load_agent", "resolve_agent_path"]

# agent.json "kind" -> (module, class). Each class has a ``load(path, ...)`` classmethod.
AGENT_KINDS: dict[str, tuple[str, str]] = {
    "dt": ("seqpolicy.agents.dt", "DecisionTransformerAgent"),
    "odt": ("seqpolicy.agents.odt", "OnlineDTAgent"),
    "tt": ("seqpolicy.agents.tt", "TrajectoryTransformerAgent"),
    "sb3": ("seqpolicy.agents.sb3", "SB3Agent"),
    "bc": ("seqpolicy.agents.bc", "BCAgent"),
}


def agent_kind(path: str | os.PathLike) -> str:
    """The ``kind`` of the agent saved at ``path`` (a folder with agent.json, or an SB3 ``.zip``).

    Raises:
        ArtifactError: nothing loadable is there, with what was expected.
    """
    path = resolve_agent_path(path)
    if path.is_file() and path.suffix == ".zip":
        return "sb3"
    cfg = path / CONFIG_FILE
    if not path.exists():
        raise ArtifactError(f"No agent at {path}: the path does not exist. Pass a folder written by agent.save() "
                            "or seqpolicy-train, or an SB3 model .zip.")
    if not cfg.is_file():
        if (path / HF_CONFIG_FILE).is_file():  # a transformers folder: weights only, no statistics or targets
            raise ArtifactError(f"{path} is a transformers folder without seqpolicy's {CONFIG_FILE}: it lacks the "
                                "observation statistics, return scale and targets an agent needs. Load it with "
                                "DecisionTransformerAgent.from_pretrained(path, state_mean=..., state_std=..., "
                                "target_return=...) (or TrajectoryTransformerAgent.from_pretrained(path, thresholds)) "
                                "and save() it.")
        raise ArtifactError(f"No agent at {path}: {CONFIG_FILE} is missing. Pass a folder written by agent.save() "
                            "or seqpolicy-train, or an SB3 model .zip.")
    try:
        kind = json.loads(cfg.read_text()).get("kind")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise ArtifactError(f"Corrupt agent artifact: {cfg} is not a valid agent description ({e}).") from e
    if kind not in AGENT_KINDS:
        raise ArtifactError(f"{cfg} names agent kind {kind!r}, which this seqpolicy cannot load "
                            f"(known: {', '.join(sorted(AGENT_KINDS))}). Upgrade seqpolicy?")
    return kind


def load_agent(path: str | os.PathLike, device: str = "auto", runtime: str = "torch", **kwargs: Any) -> Any:
    """Load the agent saved at ``path``, whatever its kind.

    Args:
        path: an agent folder (``agent.json`` + weights), a training run folder holding one in ``agent/``, or
            an SB3 model ``.zip``.
        device: torch device for agents that run a network (``"auto"``, ``"cpu"``, ``"cuda"``...).
        runtime: what computes the network: ``"torch"``, or ``"onnxruntime"`` for a DT or BC folder exported with
            ``seqpolicy-export onnx`` (on the CPU; the agent's own logic stays the same, see
            :mod:`seqpolicy.agents.onnx_network`), or for a TT its planner's one-token steps (opt-in: they round
            differently, so sampled plans can differ; :mod:`seqpolicy.agents.tt.onnx_step`).
        **kwargs: passed to the agent class's ``load``.

    Example:
        >>> agent = load_agent("envs/Hopper-v4/dt-medium")  # doctest: +SKIP
        >>> fast = load_agent("runs/hopper-dt/agent", runtime="onnxruntime")  # doctest: +SKIP
    """
    if runtime not in ("torch", "onnxruntime"):
        raise ValueError(f"runtime={runtime!r} is not one of 'torch', 'onnxruntime'.")
    path = resolve_agent_path(path)
    kind = agent_kind(path)
    if runtime == "onnxruntime":
        from seqpolicy.agents.onnx_network import NOT_EXPORTED, use_onnxruntime

        if kind in NOT_EXPORTED and kind != "tt":
            raise ValueError(f"runtime='onnxruntime' cannot run {path}: {NOT_EXPORTED[kind]}")
        if device not in ("auto", "cpu"):
            raise ValueError(f"runtime='onnxruntime' computes on the CPU, but device={device!r} was asked for: pass "
                             "device='cpu' (or use runtime='torch' on that device).")
        agent = load_agent(path, device="cpu", **kwargs)
        if kind == "tt":  # its one-token steps, traced from the model now (nothing to export beforehand)
            return agent.use_onnxruntime()
        return use_onnxruntime(agent, path)
    module, name = AGENT_KINDS[kind]
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as e:
        hint = " (pip install 'seqpolicy[sb3]')" if kind == "sb3" else ""
        raise ImportError(f"Cannot load a {kind!r} agent: {e}{hint}") from e
    if "device" in inspect.signature(cls.load).parameters:
        kwargs["device"] = device
    return cls.load(path, **kwargs)
