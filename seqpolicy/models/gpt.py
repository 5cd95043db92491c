"""GPT building blocks shared by the Decision Transformer and the Trajectory Transformer.

Pre-LayerNorm blocks (x + attn(ln1 x); x + mlp(ln2 x)) with a fused query/key/value projection and
``torch.nn.functional.scaled_dot_product_attention``. Masks are boolean with **True = may attend** (the
SDPA convention); callers build them by meaning (causal, padding, value columns) and pass them in.

Training (``module.train()`` with a full sequence) takes a second path with the same maths and fewer passes
over memory, because on a CPU a training step is bound by elementwise work, not by matmuls:

- SDPA has no fused CPU kernel for attention dropout, so it falls back to a composite that scales q and k,
  turns the bool mask into a float one, checks for empty rows and draws dropout with ``bernoulli_`` over the
  whole (B, heads, L, L) matrix. The training path adds the mask as ``baddbmm``'s bias in the QK^T GEMM.
- Dropout masks come from 16-bit pieces of 64-bit random words (:func:`dropout_keep`), written in the
  activations' dtype and applied with one multiply: ~8x cheaper than
  ``bernoulli_`` on CPUs. On GPUs ``F.dropout`` is used as is.
- Dropout's 1/(1 - p) is folded into the weights of the projection before it (an (E, E) multiply instead of
  one over every activation), and attention dropout's into the output projection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact erf GELU (minGPT / the TT reference)
    "gelu_new": lambda: nn.GELU(approximate="tanh"),  # GPT-2's tanh approximation
    "tanh": nn.Tanh,
}

KVCache = tuple[torch.Tensor, torch.Tensor]
# Preallocated (keys, values, n_past): buffers of shape (B, heads, capacity, head_dim) whose first n_past
# positions are filled; new keys/values are written in place after them instead of concatenated.
KVBuffer = tuple[torch.Tensor, torch.Tensor, int]


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


def _attention_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float,
                    p: float) -> torch.Tensor:
    """Training-mode attention of (rows, L, head_dim) queries/keys/values with an additive mask; the output is
    missing dropout's 1 / (1 - p), which the caller folds into its output projection."""
    kt = k.transpose(1, 2)
    scores = torch.bmm(q, kt) * scale if bias is None else torch.baddbmm(bias, q, kt, alpha=scale)  # (rows, L, L)
    return torch.bmm(_drop(torch.softmax(scores, dim=-1), p, scaled=True), v)


def attention_bias(allow: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask: 0 where ``allow`` (True = may attend), -inf elsewhere."""
    return torch.zeros(allow.shape, dtype=dtype, device=allow.device).masked_fill_(~allow, float("-inf"))


def _append(buffer: KVBuffer, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Write new keys/values (B, heads, L, head_dim) after the buffer's n_past filled positions; return the
    filled part, (B, heads, n_past + L, head_dim)."""
    k_buf, v_buf, n_past = buffer
    end = n_past + k.shape[2]
    k_buf[:, :, n_past:end] = k
    v_buf[:, :, n_past:end] = v
    return k_buf[:, :, :end], v_buf[:, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; the caller supplies the (causal and any other) mask."""

    def __init__(self, n_embd: int, n_head: int, attn_pdrop: float = 0.0, resid_pdrop: float = 0.0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}.")
        self.n_head, self.head_dim = n_head, n_embd // n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_pdrop = attn_pdrop
        self.resid_drop = Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor, allow: torch.Tensor | None, past: KVCache | None = None,
                buffer: KVBuffer | None = None, n_query: int | None = None, causal: bool = False,
                ) -> tuple[torch.Tensor, KVCache]:
        """x: (B, L, E); allow: bool, broadcastable to (B, heads, Lq, L_past + L); returns (y, (k, v)).

        ``causal=True`` with ``allow=None`` uses SDPA's built-in causal mask (no mask tensor to build).

        ``past`` (concatenated) and ``buffer`` (written in place, no copy of the past) are alternatives.
        With ``n_query``, only the last ``n_query`` tokens are queries and y is (B, n_query, E); keys and
        values still cover every token (inference uses it when only the last outputs are read).
        """
        b, n, e = x.shape
        if self.training and past is None and buffer is None and n_query is None:
            return self._train_forward(x, allow, causal)
        if n_query is None:
            q, k, v = self.qkv(x).split(e, dim=2)
        else:
            w, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, n - n_query:], w[:e], bias[:e])
            k, v = F.linear(x, w[e:], bias[e:]).split(e, dim=2)
        nq = q.shape[1]
        # (B, L, E) -> (B, heads, L, head_dim)
        q = q.view(b, nq, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(b, n, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(b, n, self.n_head, self.head_dim).transpose(1, 2)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        elif buffer is not None:
            k, v = _append(buffer, k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allow, is_causal=causal and allow is None,
                                           dropout_p=self.attn_pdrop if self.training else 0.0,
                                           scale=1.0 / math.sqrt(self.head_dim))
        y = y.transpose(1, 2).reshape(b, nq, e)  # (B, heads, Lq, hd) -> (B, Lq, E)
        return self.resid_drop(self.proj(y)), (k, v)

    def _train_forward(self, x: torch.Tensor, allow: torch.Tensor | None, causal: bool,
                       ) -> tuple[torch.Tensor, KVCache]:
        """forward() in training mode with the same maths in fewer passes (see the module docstring)."""
        b, n, e = x.shape
        nh, hd = self.n_head, self.head_dim
        q, k, v = self.qkv(x).split(e, dim=2)
        # (B, L, E) -> (B * heads, L, head_dim)
        q, k, v = (t.view(b, n, nh, hd).transpose(1, 2).reshape(b * nh, n, hd) for t in (q, k, v))
        if allow is None:
            allow = torch.ones(n, n, dtype=torch.bool, device=x.device).tril() if causal else None
        bias = None if allow is None else attention_bias(allow, q.dtype)  # in q's (autocast) dtype
        if bias is not None and bias.ndim == 4:  # (B or 1, 1 or heads, L, L) -> (B * heads, L, L)
            bias = bias.expand(b, nh, n, n).reshape(b * nh, n, n)
        y = _attention_rows(q, k, v, bias, 1.0 / math.sqrt(hd), self.attn_pdrop)  # (B * heads, L, head_dim)
        y = y.view(b, nh, n, hd).transpose(1, 2).reshape(b, n, e)  # (B, L, E)
        # Both dropouts' 1 / (1 - p) folded into the output projection (the bias sees only the residual one).
        keep_attn, keep_resid = 1 - self.attn_pdrop, 1 - self.resid_drop.p
        out = F.linear(y, self.proj.weight / (keep_attn * keep_resid), self.proj.bias / keep_resid)
        k = k.view(b, nh, n, hd)  # returned like forward's (keys and values of every token)
        return _drop(out, self.resid_drop.p, scaled=True), (k, v.view(b, nh, n, hd))


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

    def forward(self, x: torch.Tensor, allow: torch.Tensor | None, past: KVCache | None = None,
                buffer: KVBuffer | None = None, n_query: int | None = None, causal: bool = False,
                ) -> tuple[torch.Tensor, KVCache]:
        """See :meth:`CausalSelfAttention.forward`; with ``n_query`` only the last tokens come out."""
        a, kv = self.attn(self.ln_1(x), allow, past, buffer, n_query, causal)
        x = (x if n_query is None else x[:, x.shape[1] - n_query:]) + a
        return x + self.mlp(self.ln_2(x)), kv


class BlockWeights(NamedTuple):
    """A block's parameters and settings as plain attributes, read once: at the TT planner's one-token steps,
    module attribute lookups and module calls cost about as much as the arithmetic."""

    ln_1: tuple[torch.Tensor, torch.Tensor, float]
    qkv: tuple[torch.Tensor, torch.Tensor]
    n_head: int
    head_dim: int
    proj: tuple[torch.Tensor, torch.Tensor]
    ln_2: tuple[torch.Tensor, torch.Tensor, float]
    fc: tuple[torch.Tensor, torch.Tensor]
    act: Callable[[torch.Tensor], torch.Tensor]
    mlp_proj: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, block: Block) -> BlockWeights:
        attn, mlp = block.attn, block.mlp
        return cls((block.ln_1.weight, block.ln_1.bias, block.ln_1.eps), (attn.qkv.weight, attn.qkv.bias),
                   attn.n_head, attn.head_dim, (attn.proj.weight, attn.proj.bias),
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
                    n_query: int | None = None, buffer: KVBuffer | None = None) -> torch.Tensor:
    """``block(x, allow, ...)[0]`` in eval mode, as direct functional calls (no module dispatch, no dropout).

    The same operations on the same parameters, so the numbers equal the module path; it exists because at
    batch 1 (and in the TT planner's one-token steps) the per-call overhead of modules is a large share of an
    inference step. ``block`` may be given as its :class:`BlockWeights` (read once, reused for many calls).
    ``buffer`` is the key/value buffer of :meth:`CausalSelfAttention.forward`.
    """
    wts = block if isinstance(block, BlockWeights) else BlockWeights.of(block)
    e = x.shape[-1]
    b, n = x.shape[:2]
    h = F.layer_norm(x, (e,), wts.ln_1[0], wts.ln_1[1], wts.ln_1[2])
    w, bias = wts.qkv
    if n_query is None:
        q, k, v = F.linear(h, w, bias).split(e, dim=2)
        x_out = x
    else:
        q = F.linear(h[:, n - n_query:], w[:e], bias[:e])
        k, v = F.linear(h, w[e:], bias[e:]).split(e, dim=2)
        x_out = x[:, n - n_query:]
    nq, nh, hd = q.shape[1], wts.n_head, wts.head_dim
    # (B, L, E) -> (B, heads, L, head_dim)
    q = q.view(b, nq, nh, hd).transpose(1, 2)
    k = k.view(b, n, nh, hd).transpose(1, 2)
    v = v.view(b, n, nh, hd).transpose(1, 2)
    if buffer is not None:
        k, v = _append(buffer, k, v)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=allow, is_causal=causal and allow is None,
                                       scale=1.0 / math.sqrt(hd))
    x_out = x_out + F.linear(y.transpose(1, 2).reshape(b, nq, e), *wts.proj)
    h = F.layer_norm(x_out, (e,), wts.ln_2[0], wts.ln_2[1], wts.ln_2[2])
    return x_out + F.linear(wts.act(F.linear(h, *wts.fc)), *wts.mlp_proj)
