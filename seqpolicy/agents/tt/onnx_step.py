"""The TT planner's one-token steps on onnxruntime: an opt-in runtime that changes the rounding, not the search.

The beam search (``seqpolicy.agents.tt.planner``) spends most of its time feeding one token per beam through the
model against the key/value cache: ~100 small operations per token, each paying PyTorch's per-call overhead on a
CPU. :class:`OnnxStepModel` runs each ``extend`` (that one-token step, and the windows rebuilt after a slide) as
one onnxruntime session call instead (benchmarks/README.md has the shipped Hopper TT's speeds), on the same
:class:`~seqpolicy.models.gpt.KVCache` buffers; the search, sampling and cache reindexing stay PyTorch's.

The step is traced from the agent's own model when the runtime is chosen (a second or two; nothing is written to the
agent's folder). Its graph reads each layer's whole cache buffer, (rows, heads, capacity, head_dim), and masks the
positions not filled yet, so no cache is copied per step; it returns the new token's keys and values, which are
written into the buffers. Logits agree with PyTorch's to ~2e-5 (``tests/test_tt_onnx.py``), so sampled plans can
differ from the PyTorch runtime's after the first draw that the rounding flips: results made with it are recorded
as such and are not the zoo's.

Needs the ``onnx`` extra (``pip install 'seqpolicy[onnx]'``)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqpolicy.models.gpt import KVCache
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer

NAME = "onnxruntime"


class _Step(nn.Module):
    """What ``TrajectoryTransformer.extend`` computes for n new tokens after a cache, written for export: every
    layer's cache buffer as an input (all ``capacity`` positions; ``bias`` masks the unfilled ones and applies
    the causal and value masks), the logits of the last token and the new tokens' keys and values as outputs."""

    def __init__(self, model: TrajectoryTransformer):
        super().__init__()
        self.model = model

    def forward(self, rows: torch.Tensor, pos_emb: torch.Tensor, bias: torch.Tensor, head_w: torch.Tensor,
                *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m, c = self.model, self.model.config
        n_layer, e = c.n_layer, c.n_embd
        keys, values = caches[:n_layer], caches[n_layer:]
        x = F.embedding(rows, m.tok_emb.weight) + pos_emb  # (B, n, E)
        b, n = rows.shape
        new_k, new_v = [], []
        for i, block in enumerate(m.blocks):
            nh = block.attn.n_head
            hd = e // nh
            h = F.layer_norm(x, (e,), block.ln_1.weight, block.ln_1.bias, block.ln_1.eps)
            q, k, v = (t.reshape(b, n, nh, hd).transpose(1, 2)
                       for t in F.linear(h, block.attn.qkv.weight, block.attn.qkv.bias).split(e, 2))
            rows_bias = bias
            if i == n_layer - 1:  # only the last token's output is read: the last block queries it alone
                q, x, rows_bias = q[:, :, -1:], x[:, -1:], bias[-1:]
            # softmax over [cached positions, the new tokens]: (B, heads, n or 1, capacity + n)
            scores = torch.cat([torch.matmul(q, keys[i].transpose(-1, -2)), torch.matmul(q, k.transpose(-1, -2))],
                               -1)
            p = (scores * (1.0 / math.sqrt(hd)) + rows_bias).softmax(-1)
            cap = keys[i].shape[2]
            y = torch.matmul(p[..., :cap], values[i]) + torch.matmul(p[..., cap:], v)  # (B, heads, n or 1, hd)
            x = x + F.linear(y.transpose(1, 2).reshape(b, -1, e), block.attn.proj.weight, block.attn.proj.bias)
            h = F.layer_norm(x, (e,), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)
            x = x + F.linear(block.mlp.act(F.linear(h, block.mlp.fc.weight, block.mlp.fc.bias)),
                             block.mlp.proj.weight, block.mlp.proj.bias)
            new_k.append(k)
            new_v.append(v)
        x = F.layer_norm(x[:, -1], (e,), m.ln_f.weight, m.ln_f.bias, m.ln_f.eps)
        return (x @ head_w.T, *new_k, *new_v)


def _import_ort() -> Any:
    from seqpolicy.agents.onnx_network import _import_onnx

    return _import_onnx(export=True)[1]


class OnnxStepModel:
    """A :class:`TrajectoryTransformer` whose :meth:`extend` runs on onnxruntime.

    Every other attribute is the wrapped model's, so the planner (which reads ``config``, builds a
    :class:`KVCache` from ``blocks`` and calls ``extend``) takes it in the model's place.

    Args:
        model: the TT, on the CPU, in eval mode.
        threads: onnxruntime's intra-op threads (sessions for other counts are made when asked).
    """

    name = NAME

    def __init__(self, model: TrajectoryTransformer, threads: int = 1):
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("The onnxruntime runtime computes on the CPU: load the TT agent with device='cpu'.")
        self._ort = _import_ort()
        self.model = model.eval()
        c = model.config
        self._n_layer = c.n_layer
        self._graph = self._export(model)
        self._sessions: dict[int, Any] = {}
        self._biases: dict[tuple[int, int, int], np.ndarray] = {}  # (start, tokens, capacity) -> the step's mask
        self.session(threads)
        self._outputs = ["logits"] + [f"k{i}" for i in range(c.n_layer)] + [f"v{i}" for i in range(c.n_layer)]

    @staticmethod
    def _export(model: TrajectoryTransformer) -> bytes:
        import warnings

        from seqpolicy.agents.onnx_export import _quiet_exporter

        c = model.config
        rows, cap = 2, 3
        hd = c.n_embd // c.n_head
        cache = torch.zeros(rows, c.n_head, cap, hd)
        args = (torch.zeros(rows, 2, dtype=torch.int64), torch.zeros(1, 2, c.n_embd), torch.zeros(2, cap + 2),
                torch.zeros(c.vocab_size + 1, c.n_embd), *([cache] * (2 * c.n_layer)))
        names = ["rows", "pos_emb", "bias", "head_w"] + [f"K{i}" for i in range(c.n_layer)] + \
            [f"V{i}" for i in range(c.n_layer)]
        dynamic = {"rows": {0: "batch", 1: "tokens"}, "pos_emb": {1: "tokens"}, "bias": {0: "tokens", 1: "positions"},
                   **{n: {0: "batch", 2: "capacity"} for n in names[4:]}}
        buffer = io.BytesIO()
        with torch.no_grad(), _quiet_exporter(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Step(model).eval(), args, buffer, input_names=names,
                              output_names=["logits"] + [f"k{i}" for i in range(c.n_layer)] +
                              [f"v{i}" for i in range(c.n_layer)],
                              dynamic_axes=dynamic, opset_version=18, dynamo=False)
        return buffer.getvalue()

    def session(self, threads: int) -> Any:
        """The session running on ``threads`` intra-op threads (made on first use)."""
        from seqpolicy.agents.onnx_network import cpu_session

        if threads not in self._sessions:
            self._sessions[threads] = cpu_session(self._ort, self._graph, threads)
        return self._sessions[threads]

    def __getattr__(self, name: str) -> Any:  # config, blocks, parameters(), ...: the model's
        return getattr(self.model, name)

    def _bias(self, start: int, n: int, capacity: int) -> np.ndarray:
        """The additive mask of ``n`` new tokens after ``start`` cached ones, (n, capacity + n): the model's own
        (causal, value columns) over the filled positions and the new tokens, -inf on the unfilled ones. It depends
        only on the positions, so each is made once."""
        key = (start, n, capacity)
        if key not in self._biases:
            allow = self.model.allow[start:start + n, :start + n].numpy()  # (n, start + n)
            bias = np.full((n, capacity + n), -np.inf, dtype=np.float32)
            bias[:, :start][allow[:, :start]] = 0.0
            bias[:, capacity:][allow[:, start:]] = 0.0
            self._biases[key] = bias
        return self._biases[key]

    def extend(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """``TrajectoryTransformer.extend`` on onnxruntime: feed ``tokens`` (B, n) after the cache's, write their
        keys and values into it, return the last token's logits (B, N+1)."""
        m, c = self.model, self.model.config
        start, n = cache.length, tokens.shape[1]
        if start + n > min(cache.capacity, c.block_size):
            raise ValueError(f"KVCache holds {cache.capacity} tokens; {start} + {n} do not fit.")
        feed = {"rows": m._rows(tokens, start).numpy(), "pos_emb": m.pos_emb[:, start:start + n].detach().numpy(),
                "bias": self._bias(start, n, cache.capacity),
                "head_w": m.head.weight[(start + n - 1) % c.transition_dim].detach().numpy()}
        for i in range(self._n_layer):  # the whole buffers, shared with torch (no copy)
            feed[f"K{i}"] = cache.k[i].numpy()
            feed[f"V{i}"] = cache.v[i].numpy()
        out = self.session(torch.get_num_threads()).run(self._outputs, feed)
        for i in range(self._n_layer):
            cache.k[i][:, :, start:start + n] = torch.from_numpy(out[1 + i])
            cache.v[i][:, :, start:start + n] = torch.from_numpy(out[1 + self._n_layer + i])
        cache.length = start + n
        return torch.from_numpy(out[0])
