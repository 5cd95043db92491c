"""An agent's network as an ONNX file in its folder, and onnxruntime computing it in place of PyTorch.

An agent's ``act()`` is Python around one network call per step. Export (``seqpolicy-export onnx DIR``, or
:func:`seqpolicy.agents.onnx_export.export_onnx`) traces exactly that call and writes ``model.onnx`` beside the
weights; ``agent.json`` records it (file, SHA-256, the weights' SHA-256 it was made from, inputs, outputs,
opset, versions) after the graph passed ``onnx.checker`` and agreed with PyTorch on sample inputs. The runtime
(``load_agent(dir, runtime="onnxruntime")``, or :func:`use_onnxruntime`) loads the agent as usual and swaps
only that call for an onnxruntime session: the rolling context, normalisation, returns-to-go and action
rescaling stay the agent's own code, so ``act``, ``predict``, batching and per-env resets behave the same and
actions agree with PyTorch's within float rounding.

The network call of each agent kind (batch dimension dynamic, everything else fixed):

- DT: ``model.last_action(states, actions, returns_to_go, timesteps, keep)`` on the agent's window of K steps,
  left-padded, states normalised, returns-to-go scaled, the current action a zero placeholder, ``keep`` False
  on padding; out comes the action for the window's last step, in [-1, 1]. A stochastic DT acting with its
  Gaussian's mean has the same call and reuses this export (its model's ``last_action`` returns the mean).
- BC: ``policy(obs)`` on normalised observations; out comes the action in [-1, 1].
- TT: not exported (see :data:`NOT_EXPORTED`): its beam search is Python around hundreds of one-token model
  calls per step through a key/value cache; ``runtime="onnxruntime"`` runs those calls on onnxruntime
  (:mod:`seqpolicy.agents.tt.onnx_step`, traced when loaded).

A folder whose ``model.onnx`` is missing, was made from other weights, is not recorded in agent.json (the
agent was saved again after the export), or does not match its recorded SHA-256 is refused with what to run.
Needs the ``onnx`` extra (``pip install 'seqpolicy[onnx]'``); ``import seqpolicy`` never imports onnx.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqpolicy.common.artifact import CONFIG_FILE, ArtifactError, file_sha256, read_json, resolve_agent_path

ONNX_FILE = "model.onnx"
RECORD_KEY = "onnx"
"""agent.json's key for the export record."""
RUNTIMES = ("torch", "onnxruntime")
EXPORT_TOLERANCE = 1e-4
"""Largest difference from PyTorch's actions an export may show on its sample inputs."""
INSTALL_HINT = "pip install 'seqpolicy[onnx]'"
"""The extra: onnx, onnxruntime, and onnxscript (torch's exporter needs it)."""

NOT_EXPORTED = {
    "tt": "A TT agent is not exported to ONNX: its planner is a beam search in Python that calls the model "
          "hundreds of times per step, one token at a time, through an exact key/value cache. "
          "Its runtime 'onnxruntime' (seqpolicy-eval --runtime onnxruntime, load_agent(dir, runtime='onnxruntime')) "
          "runs those steps on onnxruntime, traced when the agent is loaded: nothing to export "
          "(seqpolicy.agents.tt.onnx_step).",
    "sb3": "An SB3 agent is not exported by seqpolicy: use Stable-Baselines3's own ONNX export "
           "(https://stable-baselines3.readthedocs.io, 'Exporting models').",
}


@dataclass(frozen=True)
class NetworkCall:
    """The network call an agent makes per step, as a module to trace with sample inputs."""

    module: nn.Module
    """forward(*inputs) computes the agent's actions in [-1, 1], (batch, act_dim)."""
    inputs: dict[str, torch.Tensor]
    """Sample inputs by name, in call order, with a batch of 2 (the exported batch dimension is dynamic)."""
    computes: str
    """One line for agent.json: what the graph computes from what."""


class _DTLastAction(nn.Module):
    """``model.last_action`` as a module's forward, with ``keep`` always given (the agent may pass None: all
    True, which the runtime fills in)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, states: torch.Tensor, actions: torch.Tensor, returns_to_go: torch.Tensor,
                timesteps: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.model.last_action(states, actions, returns_to_go, timesteps, keep)


def network_call(agent: Any) -> NetworkCall:
    """The traceable network call of ``agent`` (a DT or BC agent; see the module docstring).

    Raises:
        ValueError: the agent's kind is not exported, with why.
    """
    from seqpolicy.agents.bc import BCAgent
    from seqpolicy.agents.dt import DecisionTransformerAgent

    g = torch.Generator().manual_seed(0)
    if isinstance(agent, DecisionTransformerAgent):
        c, k = agent.model.config, agent.context_length
        keep = torch.ones(2, k, dtype=torch.bool)
        keep[0, : k // 2] = False  # one window still left-padded, one full
        inputs = {"states": torch.randn(2, k, c.state_dim, generator=g),
                  "actions": torch.rand(2, k, c.act_dim, generator=g) * 2 - 1,
                  "returns_to_go": torch.randn(2, k, 1, generator=g),
                  "timesteps": torch.randint(0, c.max_ep_len, (2, k), generator=g),
                  "keep": keep}
        return NetworkCall(_DTLastAction(agent.model), inputs,
                           f"DecisionTransformer.last_action: the action in [-1, 1] for the last step of each window "
                           f"of {k} steps (states normalised, returns-to-go scaled, keep False on left padding)")
    if isinstance(agent, BCAgent):
        return NetworkCall(agent.policy, {"obs": torch.randn(2, agent.obs_dim, generator=g)},
                           "BCPolicy: the action in [-1, 1] for each normalised observation")
    kind = getattr(agent, "kind", type(agent).__name__)
    raise ValueError(NOT_EXPORTED.get(kind, f"{type(agent).__name__} has no ONNX export (DT and BC agents do)."))


def _import_onnx(export: bool = False) -> tuple[Any, Any]:
    """(onnx, onnxruntime); ``export`` also needs onnxscript (torch's exporter)."""
    try:
        import onnx
        import onnxruntime

        if export:
            import onnxscript  # noqa: F401
    except ImportError as e:
        raise ImportError(f"ONNX export and the onnxruntime runtime need the onnx extra ({e}): {INSTALL_HINT}.") from e
    return onnx, onnxruntime


def check_onnx(folder: str | os.PathLike) -> dict:
    """The export record of the agent in ``folder``, after checking that its ONNX file is there, was made from
    the current weights and matches its recorded SHA-256.

    Raises:
        ArtifactError: missing, stale or altered, with what to run.
        ValueError: the agent's kind has no export (TT, SB3).
    """
    folder = resolve_agent_path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise ArtifactError(f"No agent at {folder}: {CONFIG_FILE} is missing. Pass a folder written by agent.save() "
                            "or seqpolicy-train.")
    meta = read_json(folder / CONFIG_FILE, " Re-save the agent.")
    if meta.get("kind") in NOT_EXPORTED:
        raise ValueError(NOT_EXPORTED[meta["kind"]])
    redo = f"Export it again: seqpolicy-export onnx {folder}"
    record = meta.get(RECORD_KEY)
    if record is None:
        if (folder / ONNX_FILE).exists():
            raise ArtifactError(f"{folder / ONNX_FILE} is stale: {CONFIG_FILE} does not record it, so the agent was "
                                f"saved again after the export (agent.save() and seqpolicy-calibrate --save write a "
                                f"new {CONFIG_FILE}). {redo}")
        raise ArtifactError(f"{folder} has no ONNX export ({CONFIG_FILE} records none). Export it with "
                            f"seqpolicy-export onnx {folder} (needs {INSTALL_HINT}), or load the agent "
                            "with runtime='torch'.")
    path = folder / record["file"]
    if not path.is_file():
        raise ArtifactError(f"{CONFIG_FILE} in {folder} records {record['file']}, but the file is missing. {redo}")
    if record.get("weights_sha256") != meta.get("weights_sha256"):
        raise ArtifactError(f"{path} is stale: it was exported from other weights than the folder's "
                            f"model.safetensors. {redo}")
    if file_sha256(path) != record.get("sha256"):
        raise ArtifactError(f"{path} does not match the SHA-256 recorded in {CONFIG_FILE} (edited, truncated or "
                            f"replaced). {redo}")
    return record


class OnnxRuntimeNetwork:
    """An onnxruntime session behind an agent's network call: the agent's CPU tensors in, a tensor out.

    An input passed as None (the DT's ``keep`` when no window is padded) is all ones (True) of its shape.
    onnxruntime runs on as many intra-op threads as torch is set to at the call: agents set that around every
    ``act`` (one thread unless ``agent.threads`` or ``set_acting_threads`` say otherwise), so the runtime
    follows them; a session is made per thread count, when first needed.
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        _, self._ort = _import_onnx()
        self.path = Path(path)
        self._sessions: dict[int, Any] = {}
        first = self.session(threads)  # the count the agent will act with, made now to read the inputs
        dtypes = {"tensor(bool)": np.dtype(bool), "tensor(int64)": np.dtype(np.int64)}
        self.inputs = [(i.name, i.shape, dtypes.get(i.type, np.dtype(np.float32))) for i in first.get_inputs()]
        self.input_names = [name for name, _, _ in self.inputs]
        self._ones: dict[tuple[int, int], np.ndarray] = {}

    def session(self, threads: int) -> Any:
        """The session running on ``threads`` intra-op threads (made on first use)."""
        if threads not in self._sessions:
            self._sessions[threads] = cpu_session(self._ort, str(self.path), threads)
        return self._sessions[threads]

    def _all_true(self, index: int, batch: int) -> np.ndarray:
        if (index, batch) not in self._ones:
            _, shape, dtype = self.inputs[index]
            self._ones[index, batch] = np.ones((batch, *shape[1:]), dtype=dtype)
        return self._ones[index, batch]

    def __call__(self, *inputs: torch.Tensor | None) -> torch.Tensor:
        batch = next(t.shape[0] for t in inputs if t is not None)
        feed = {name: self._all_true(i, batch) if t is None else np.ascontiguousarray(t.numpy())
                for i, (name, t) in enumerate(zip(self.input_names, inputs, strict=True))}
        return torch.from_numpy(self.session(torch.get_num_threads()).run(None, feed)[0])


def cpu_session(ort: Any, model: str | bytes, threads: int) -> Any:
    """An onnxruntime session on the CPU for ``model`` (a path or the graph's bytes): ``threads`` intra-op
    threads, sequential execution, every graph optimisation."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def use_onnxruntime(agent: Any, folder: str | os.PathLike) -> Any:
    """Make ``agent`` (loaded from ``folder``) compute its network with onnxruntime; returns the agent.

    Args:
        agent: a DT or BC agent on the CPU, loaded from ``folder``.
        folder: its folder, holding an up-to-date ``seqpolicy-export onnx`` export.

    Raises:
        ArtifactError: the export is missing, stale or altered, or does not fit the agent.
        ValueError: the agent is not on the CPU, or its kind has no export.

    Example:
        >>> agent = use_onnxruntime(DecisionTransformerAgent.load(folder), folder)  # doctest: +SKIP
    """
    from seqpolicy.common.threads import acting_threads

    call = network_call(agent)  # refuses kinds without an export
    if getattr(agent, "device", torch.device("cpu")).type != "cpu":
        raise ValueError(f"The onnxruntime runtime computes on the CPU, but the agent was loaded on {agent.device}: "
                         "load it with device='cpu'.")
    folder = resolve_agent_path(folder)
    record = check_onnx(folder)
    network = OnnxRuntimeNetwork(folder / record["file"], acting_threads(getattr(agent, "threads", None)))
    graph = {name: list(shape[1:]) for name, shape, _ in network.inputs}
    wanted = {name: list(t.shape[1:]) for name, t in call.inputs.items()}
    if graph != wanted:
        raise ArtifactError(f"{folder / record['file']} takes inputs {graph}, but this agent feeds {wanted}. "
                            f"Export it again: seqpolicy-export onnx {folder}")
    agent.runtime = network
    return agent
