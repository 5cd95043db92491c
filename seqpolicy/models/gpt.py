"""GPT building blocks shared by the Decision Transformer and the Trajectory Transformer.

Pre-LayerNorm blocks (x + attn(ln1 x); x + mlp(ln2 x)) with a fused query/key/value projection. Masks are
boolean with **True = may attend** (the SDPA convention); callers build them by meaning (causal, padding, value
columns) and pass them in.

Attention is defined once (:class:`CausalSelfAttention`): project x to queries, keys and values
(:func:`_project`, which splits the heads), softmax(q k^T / sqrt(head_dim) + mask) v, merge the heads and
project out. Two kernels compute it, and ``tests/test_attention.py`` checks that they agree:

- :func:`attention_infer`, the inference kernel (eval mode, no dropout): ``scaled_dot_product_attention``,
  optionally for the last ``n_query`` queries only and after the keys/values held in a :class:`KVCache` (the TT
  planner's exact cache). :func:`block_inference` runs a whole block with it as direct functional calls.
- :func:`attention_train`, the training kernel: the same maths with dropout in fewer passes over memory,
  because on a CPU a training step is bound by elementwise work, not by matmuls:

  - SDPA has no fused CPU kernel for attention dropout, so it falls back to a composite that scales q and k,
    turns the bool mask into a float one, checks for empty rows and draws dropout with ``bernoulli_`` over the
    whole (B, heads, L, L) matrix. The training kernel adds the mask as ``baddbmm``'s bias in the QK^T GEMM.
  - Dropout masks come from 16-bit pieces of 64-bit random words (:func:`dropout_keep`), written in the
    activations' dtype and applied with one multiply: ~8x cheaper than ``bernoulli_`` on CPUs. On GPUs
    ``F.dropout`` is used as is.
  - Dropout's 1/(1 - p) is folded into the weights of the projection before it (an (E, E) multiply instead of
    one over every activation), and attention dropout's into the output projection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["relu", "gelu", "gelu_new", "tanh"]
"""The MLP activations by name: the keys of ACTIVATIONS (tests/test_config_fields.py checks they agree)."""
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact erf GELU (minGPT / the TT reference)
    "gelu_new": lambda: nn.GELU(approximate="tanh"),  # GPT-2's tanh approximation
    "tanh": nn.Tanh,
}


def dropout_keep(shape: tuple[int, ...], p: float, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """A mask of ``shape`` in ``dtype``: 1 with probability 1 - p (the units dropout keeps), else 0.

    Deviation from ``bernoulli_``: p is rounded to a multiple of 2^-16 (0.1 becomes 0.1000061), because the
    mask compares the four 16-bit pieces of 64-bit random words with a threshold, which costs ~1/8 of
    ``bernoulli_`` on a CPU. The comparison writes the mask in ``dtype`` directly, so applying it is one
    multiply (``torch.where`` on a bool mask is ~3x slower on CPUs). Draws come from torch's default
    generator, so ``torch.manual_seed`` repeats them.
    """
    if p >= 1:  # the threshold would not fit in int16
        return torch.zeros(shape, dtype=dtype, device=device)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    pieces = words.view(torch.int16)[:n]  # each uniform over the int16 range
    threshold = round(p * 65536) - 32768  # pieces >= threshold are kept: probability (32768 - threshold) / 65536
    return torch.ge(pieces, threshold, out=torch.empty(n, dtype=dtype, device=device)).view(shape)


def _drop(x: torch.Tensor, p: float, scaled: bool = False) -> torch.Tensor:
    """Training-mode dropout of x; ``scaled=True`` means the caller already multiplied x by 1 / (1 - p)."""
    if p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True) * (1 - p) if scaled else F.dropout(x, p, True)
    kept = x * dropout_keep(x.shape, p, x.dtype, x.device)
    return kept if scaled else kept.mul_(1 / (1 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the cheaper CPU mask of :func:`dropout_keep` (same module, same ``p``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _drop(x, self.p) if self.training else x


def attention_bias(allow: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask: 0 where ``allow`` (True = may attend), -inf elsewhere."""
    return torch.zeros(allow.shape, dtype=dtype, device=allow.device).masked_fill_(~allow, float("-inf"))


# -- attention: one definition, two kernels ---------------------------------------------------------------


class AttentionWeights(NamedTuple):
    """An attention layer's parameters as plain attributes: at the TT planner's one-token steps, module
    attribute lookups and module calls cost about as much as the arithmetic."""

    qkv: tuple[torch.Tensor, torch.Tensor]  # fused query/key/value projection: (3E, E), (3E,)
    proj: tuple[torch.Tensor, torch.Tensor]  # output projection: (E, E), (E,)
    n_head: int

    @classmethod
    def of(cls, attn: CausalSelfAttention) -> AttentionWeights:
        return cls((attn.qkv.weight, attn.qkv.bias), (attn.proj.weight, attn.proj.bias), attn.n_head)


def _heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, L, E) -> (B, heads, L, head_dim), a view."""
    b, n, e = t.shape
    return t.view(b, n, n_head, e // n_head).transpose(1, 2)


def _merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, head_dim) -> (B, L, E)."""
    b, nh, n, hd = y.shape
    return y.transpose(1, 2).reshape(b, n, nh * hd)


def _project(x: torch.Tensor, w: AttentionWeights, n_query: int | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of x (B, L, E), each (B, heads, L, head_dim); with ``n_query`` only the last
    ``n_query`` tokens are queried (q is (B, heads, n_query, head_dim)), keys and values cover every token."""
    e = x.shape[-1]
    weight, bias = w.qkv
    if n_query is None:
        q, k, v = F.linear(x, weight, bias).split(e, dim=2)  # (B, L, E) each
    else:  # two GEMMs: the query rows of the weight for the last tokens, key/value rows for every token
        q = F.linear(x[:, x.shape[1] - n_query:], weight[:e], bias[:e])
        k, v = F.linear(x, weight[e:], bias[e:]).split(e, dim=2)
    return _heads(q, w.n_head), _heads(k, w.n_head), _heads(v, w.n_head)


class KVCache:
    """The keys and values every layer of ``model`` (whose ``blocks`` are :class:`Block` s) computed for the
    tokens of ``rows`` sequences seen so far, up to ``capacity`` tokens each: seqpolicy's one key/value cache,
    which the TT planner extends token by token (:meth:`TrajectoryTransformer.extend`). It is exact: the keys
    and values of a position depend only on that position and earlier ones.

    ``k[layer]`` and ``v[layer]`` are preallocated buffers of shape (rows, heads, capacity, head_dim) whose
    first ``length`` positions are filled; :func:`attention_infer` writes a layer's new keys/values after them
    in place (:meth:`append`: no concatenation, no copy of the past) and the caller advances ``length`` once
    every layer has them. Buffers freed by :meth:`release` and :meth:`reindex` go to ``pool`` (free buffers by
    row count, shareable between caches) and are reused: fresh large allocations cost page faults on every
    beam step.
    """

    def __init__(self, model: nn.Module, rows: int, capacity: int, pool: dict | None = None):
        blocks = model.blocks
        p = next(model.parameters())
        self.shape = (blocks[0].attn.n_head, capacity, blocks[0].attn.head_dim)
        self.dtype, self.device = p.dtype, p.device
        self.pool = {} if pool is None else pool
        self.k = [self._buffer(rows) for _ in blocks]
        self.v = [self._buffer(rows) for _ in blocks]
        self.length = 0  # tokens filled (for the TT: position 0 is the window start, a transition boundary)
        self.weights = [BlockWeights.of(block) for block in blocks]  # read once per cache, not per token

    @property
    def capacity(self) -> int:
        return self.shape[1]

    def _buffer(self, rows: int) -> torch.Tensor:
        free = self.pool.get(rows)
        # Zeros, not empty: a position past ``length`` is never read by torch's kernels, but the onnxruntime step
        # (seqpolicy.agents.tt.onnx_step) reads whole buffers and masks those positions, which needs finite values
        # (pooled buffers hold earlier keys and values, which are).
        return free.pop() if free else torch.zeros((rows, *self.shape), dtype=self.dtype, device=self.device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``layer``'s new keys/values (rows, heads, L, head_dim) after the ``length`` filled positions;
        return that layer's keys/values up to them, (rows, heads, length + L, head_dim) each (views)."""
        start, k_buf, v_buf = self.length, self.k[layer], self.v[layer]
        end = start + k.shape[2]
        k_buf[:, :, start:end] = k
        v_buf[:, :, start:end] = v
        return k_buf[:, :, :end], v_buf[:, :, :end]

    def release(self) -> None:
        """Hand every buffer back to the pool (the cache is empty afterwards)."""
        for buf in self.k + self.v:
            self.pool.setdefault(buf.shape[0], []).append(buf)
        self.k, self.v, self.length = [], [], 0

    def reindex(self, rows: torch.Tensor) -> None:
        """Keep/repeat/reorder rows (beam selection): the cache follows the token sequences it belongs to."""
        for bufs in (self.k, self.v):
            for i, old in enumerate(bufs):
                bufs[i] = torch.index_select(old, 0, rows, out=self._buffer(len(rows)))
                self.pool.setdefault(old.shape[0], []).append(old)


def attention_infer(x: torch.Tensor, w: AttentionWeights, allow: torch.Tensor | None, causal: bool = False,
                    n_query: int | None = None, cache: KVCache | None = None, layer: int = 0,
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The inference kernel of attention (no dropout): SDPA on the projected heads of x (B, L, E).

    ``allow`` (bool, True = may attend) broadcasts to (B, heads, Lq, length + L): rows are the queries, columns
    every key, the cache's first. None: every query sees every key, or with ``causal`` (read only then) the
    keys up to its own position, SDPA's built-in mask (queries and keys must then be the same tokens). With
    ``n_query`` only the last ``n_query`` tokens are queries; with ``cache`` the keys and values of earlier
    tokens come first and this layer's (index ``layer``) new ones are appended to it. Returns y (B, Lq, E),
    Lq = ``n_query`` or L, and the keys and values the queries saw, (B, heads, length + L, head_dim) each.
    """
    if causal and allow is None and (n_query is not None or cache is not None):
        raise ValueError("causal=True without an allow mask needs queries and keys to be the same tokens (SDPA "
                         "aligns its causal mask top-left); pass the causal rows of the queries as allow.")
    q, k, v = _project(x, w, n_query)  # (B, heads, Lq or L, head_dim)
    if cache is not None:
        k, v = cache.append(layer, k, v)  # (B, heads, length + L, head_dim)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=allow, is_causal=causal and allow is None,
                                       scale=1.0 / math.sqrt(q.shape[-1]))
    return F.linear(_merge_heads(y), *w.proj), (k, v)


def _attention_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float,
                    p: float) -> torch.Tensor:
    """Training-mode attention of (rows, L, head_dim) queries/keys/values with an additive mask; the output is
    missing dropout's 1 / (1 - p), which the caller folds into its output projection."""
    kt = k.transpose(1, 2)
    scores = torch.bmm(q, kt) * scale if bias is None else torch.baddbmm(bias, q, kt, alpha=scale)  # (rows, L, L)
    return torch.bmm(_drop(torch.softmax(scores, dim=-1), p, scaled=True), v)


def attention_train(x: torch.Tensor, w: AttentionWeights, allow: torch.Tensor | None, causal: bool = False,
                    attn_pdrop: float = 0.0, resid_pdrop: float = 0.0,
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The training kernel of attention: :func:`attention_infer`'s maths over a whole sequence (no cache, every
    token a query) with dropout on the attention weights (``attn_pdrop``) and on the output (``resid_pdrop``),
    in fewer passes over memory (see the module docstring). Same arguments and returns as attention_infer."""
    b, n, e = x.shape
    nh = w.n_head
    hd = e // nh
    q, k, v = (t.reshape(b * nh, n, hd) for t in _project(x, w))  # (B, heads, L, hd) -> (B * heads, L, hd)
    if allow is None:
        allow = torch.ones(n, n, dtype=torch.bool, device=x.device).tril() if causal else None
    bias = None if allow is None else attention_bias(allow, q.dtype)  # in q's (autocast) dtype
    if bias is not None and bias.ndim == 4:  # (B or 1, 1 or heads, L, L) -> (B * heads, L, L)
        bias = bias.expand(b, nh, n, n).reshape(b * nh, n, n)
    y = _attention_rows(q, k, v, bias, 1.0 / math.sqrt(hd), attn_pdrop)  # (B * heads, L, head_dim)
    y = _merge_heads(y.view(b, nh, n, hd))  # (B, L, E)
    # Both dropouts' 1 / (1 - p) folded into the output projection (the bias sees only the residual one).
    keep_attn, keep_resid = 1 - attn_pdrop, 1 - resid_pdrop
    out = F.linear(y, w.proj[0] / (keep_attn * keep_resid), w.proj[1] / keep_resid)
    return _drop(out, resid_pdrop, scaled=True), (k.view(b, nh, n, hd), v.view(b, nh, n, hd))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention: softmax(q k^T / sqrt(head_dim) + mask) v over ``n_head`` heads, with a fused
    q/k/v projection and an output projection; the caller supplies the (causal and any other) mask. Training
    mode runs :func:`attention_train`, eval mode :func:`attention_infer`."""

    def __init__(self, n_embd: int, n_head: int, attn_pdrop: float = 0.0, resid_pdrop: float = 0.0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}.")
        self.n_head, self.head_dim = n_head, n_embd // n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_pdrop = attn_pdrop
        self.resid_drop = Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor, allow: torch.Tensor | None, causal: bool = False,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: (B, L, E); allow: bool, True = may attend, broadcastable to (B, heads, L, L); ``causal=True`` with
        ``allow=None`` is plain causal attention. Returns y (B, L, E) and the keys and values of every token,
        (B, heads, L, head_dim) each."""
        w = AttentionWeights.of(self)
        if self.training:
            return attention_train(x, w, allow, causal, self.attn_pdrop, self.resid_drop.p)
        return attention_infer(x, w, allow, causal)


class MLP(nn.Module):
    def __init__(self, n_embd: int, n_inner: int, activation: str = "gelu", resid_pdrop: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        self.fc = nn.Linear(n_embd, n_inner)
        self.act = ACTIVATIONS[activation]()
        self.proj = nn.Linear(n_inner, n_embd)
        self.drop = Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.proj(self.act(self.fc(x)))
        # Not in place: an in-place ReLU on F.linear's (reshaped) output makes autograd copy it back and forth.
        h = self.act(self.fc(x))
        keep = 1 - self.drop.p  # dropout's 1 / (1 - p) folded into the projection's weights
        return _drop(F.linear(h, self.proj.weight / keep, self.proj.bias / keep), self.drop.p, scaled=True)


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, n_embd: int, n_head: int, n_inner: int | None = None, activation: str = "gelu",
                 attn_pdrop: float = 0.0, resid_pdrop: float = 0.0, layer_norm_eps: float = 1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=layer_norm_eps)
        self.attn = CausalSelfAttention(n_embd, n_head, attn_pdrop, resid_pdrop)
        self.ln_2 = nn.LayerNorm(n_embd, eps=layer_norm_eps)
        self.mlp = MLP(n_embd, n_inner or 4 * n_embd, activation, resid_pdrop)

    def forward(self, x: torch.Tensor, allow: torch.Tensor | None, causal: bool = False,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """See :meth:`CausalSelfAttention.forward`: (B, L, E) out, and the attention's keys and values."""
        a, keys_values = self.attn(self.ln_1(x), allow, causal)
        x = x + a
        return x + self.mlp(self.ln_2(x)), keys_values


class BlockWeights(NamedTuple):
    """A block's parameters and settings as plain attributes, read once (see :class:`AttentionWeights`)."""

    ln_1: tuple[torch.Tensor, torch.Tensor, float]
    attn: AttentionWeights
    ln_2: tuple[torch.Tensor, torch.Tensor, float]
    fc: tuple[torch.Tensor, torch.Tensor]
    act: Callable[[torch.Tensor], torch.Tensor]
    mlp_proj: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, block: Block) -> BlockWeights:
        mlp = block.mlp
        return cls((block.ln_1.weight, block.ln_1.bias, block.ln_1.eps), AttentionWeights.of(block.attn),
                   (block.ln_2.weight, block.ln_2.bias, block.ln_2.eps), (mlp.fc.weight, mlp.fc.bias),
                   _functional(mlp.act), (mlp.proj.weight, mlp.proj.bias))


def _functional(act: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function an activation module computes, callable without module dispatch."""
    if isinstance(act, nn.GELU):
        return functools.partial(F.gelu, approximate=act.approximate)
    if isinstance(act, nn.ReLU):
        return F.relu
    if isinstance(act, nn.Tanh):
        return torch.tanh
    return act


def block_inference(block: Block | BlockWeights, x: torch.Tensor, allow: torch.Tensor | None, causal: bool = False,
                    n_query: int | None = None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
    """``block(x, allow, causal)[0]`` in eval mode as direct functional calls (no module dispatch, no dropout),
    extended by :func:`attention_infer`'s ``n_query`` (only the last tokens come out, (B, n_query, E)) and
    ``cache``/``layer`` (x follows the cache's tokens).

    The same operations on the same parameters, so the numbers equal the module path; it exists because at
    batch 1 (and in the TT planner's one-token steps) the per-call overhead of modules is a large share of an
    inference step. ``block`` may be given as its :class:`BlockWeights` (read once, reused for many calls).
    """
    wts = block if isinstance(block, BlockWeights) else BlockWeights.of(block)
    e = x.shape[-1]
    h = F.layer_norm(x, (e,), *wts.ln_1)
    a, _ = attention_infer(h, wts.attn, allow, causal, n_query, cache, layer)
    x = (x if n_query is None else x[:, x.shape[1] - n_query:]) + a  # (B, Lq, E)
    h = F.layer_norm(x, (e,), *wts.ln_2)
    return x + F.linear(wts.act(F.linear(h, *wts.fc)), *wts.mlp_proj)
