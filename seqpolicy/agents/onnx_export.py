"""``export_onnx``: write the network of a saved DT or BC agent to ``model.onnx`` in its folder and record it.

What is exported and how the file is checked and used: :mod:`seqpolicy.agents.onnx_network` (this module loads
the agent, that one knows its network call and runs the file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpolicy.agents.loading import agent_kind, load_agent
from seqpolicy.agents.onnx_network import (
    EXPORT_TOLERANCE,
    NOT_EXPORTED,
    ONNX_FILE,
    RECORD_KEY,
    _import_onnx,
    network_call,
)
from seqpolicy.common.artifact import (
    CONFIG_FILE,
    ArtifactError,
    atomic_write_json,
    file_sha256,
    read_json,
    resolve_agent_path,
)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter logs and warns about things that do not concern these graphs (torchvision ops,
    deprecations, dimension names): keep them off the user's terminal."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(folder: str | os.PathLike, opset: int | None = None) -> Path:
    """Export the network of the agent saved in ``folder`` to ``folder/model.onnx`` and record it in agent.json.

    The graph is checked with ``onnx.checker`` and run with onnxruntime on sample inputs (one left-padded DT
    window, one full) before anything is written; its actions must equal PyTorch's within
    :data:`EXPORT_TOLERANCE`. An earlier export in the folder is replaced.

    Args:
        folder: an agent folder (or a ``seqpolicy-train`` run folder holding one in ``agent/``).
        opset: ONNX opset to target (default: torch's exporter's default).

    Returns:
        The path of the ONNX file.

    Raises:
        ValueError: the agent's kind has no export (TT, SB3), with why.
        ImportError: the onnx extra is missing.
        ArtifactError: the folder holds no loadable agent, or the exported graph disagrees with PyTorch.

    Example:
        >>> export_onnx("runs/hopper-dt/agent")  # doctest: +SKIP
        PosixPath('runs/hopper-dt/agent/model.onnx')
    """
    folder = resolve_agent_path(folder)
    kind = agent_kind(folder)
    if kind in NOT_EXPORTED:
        raise ValueError(NOT_EXPORTED[kind])
    onnx, ort = _import_onnx(export=True)
    agent = load_agent(folder, device="cpu")
    call = network_call(agent)
    names = list(call.inputs)
    batch = torch.export.Dim("batch")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{ONNX_FILE}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(call.module, tuple(call.inputs.values()), dynamo=True, verbose=False,
                                        input_names=names, output_names=["action"], opset_version=opset,
                                        dynamic_shapes={name: {0: batch} for name in names})
            program.save(tmp, external_data=False)
            expected = call.module(*call.inputs.values()).numpy()
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model, full_check=True)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.numpy() for n, t in call.inputs.items()})[0]
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        if not diff <= EXPORT_TOLERANCE:
            raise ArtifactError(f"The exported graph of {folder} computes other actions than PyTorch (largest "
                                f"difference {diff:.3g}, allowed {EXPORT_TOLERANCE}): nothing was written. Please "
                                "report this with the torch, onnx, onnxscript and onnxruntime versions.")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, folder / ONNX_FILE)
    finally:
        tmp.unlink(missing_ok=True)

    def describe(values: Any) -> list[dict]:
        return [{"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

    meta = read_json(folder / CONFIG_FILE)  # load_agent checked it; rewritten with the record added
    meta[RECORD_KEY] = {
        "file": ONNX_FILE,
        "sha256": file_sha256(folder / ONNX_FILE),
        "weights_sha256": meta["weights_sha256"],
        "computes": call.computes,
        "inputs": describe(model.graph.input),
        "outputs": describe(model.graph.output),
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "versions": {name: version(name) for name in ("torch", "onnx", "onnxscript", "onnxruntime")},
    }
    atomic_write_json(folder / CONFIG_FILE, meta)
    return folder / ONNX_FILE
