"""The two kernels of attention in seqpolicy/models/gpt.py compute the same maths: the training kernel (no
dropout) over a whole sequence equals the inference kernel, with and without a KVCache prefix."""

import pytest
import torch
from torch import nn

from seqpolicy.models import gpt

E, N_HEAD, B, L = 32, 4, 3, 11


class _Body(nn.Module):
    """The smallest model a KVCache is built from: a ``blocks`` list."""

    def __init__(self, n_layer: int = 1):
        super().__init__()
        self.blocks = nn.ModuleList(gpt.Block(E, N_HEAD) for _ in range(n_layer))


def _masks() -> dict[str, torch.Tensor | None]:
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    columns = causal.clone()
    columns[:, 3::4] = False  # columns nobody reads (like the TT's value tokens) ...
    columns |= torch.eye(L, dtype=torch.bool)  # ... but every row keeps itself
    keep = torch.ones(B, L, dtype=torch.bool)
    keep[0, :4], keep[1, :1] = False, False  # left padding, per row (like the DT's)
    padded = (causal & keep[:, None, :] | torch.eye(L, dtype=torch.bool))[:, None]  # (B, 1, L, L)
    return {"builtin causal": None, "causal": causal, "value columns": columns, "padding": padded}


def _setup(seed: int = 0) -> tuple[_Body, gpt.AttentionWeights, torch.Tensor]:
    torch.manual_seed(seed)
    body = _Body().eval()
    attn = body.blocks[0].attn
    for p in attn.qkv.parameters():  # biases too, so that every weight matters; peaked attention weights
        nn.init.normal_(p, 0.0, 0.3)
    for p in attn.proj.parameters():  # outputs of order 1, where atol=1e-6 is a few fp32 roundings
        nn.init.normal_(p, 0.0, 0.05)
    return body, gpt.AttentionWeights.of(attn), torch.randn(B, L, E)


def _rows(allow: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
    """The mask of queries start..stop-1 over keys 0..stop-1 (the causal one when allow is None)."""
    full = torch.ones(L, L, dtype=torch.bool).tril() if allow is None else allow
    return full[..., start:stop, :stop]


@pytest.mark.parametrize("mask", list(_masks()))
@torch.no_grad()
def test_training_kernel_equals_inference_kernel(mask):
    _, w, x = _setup()
    allow = _masks()[mask]
    y_train, (k_train, v_train) = gpt.attention_train(x, w, allow, causal=True)
    y_infer, (k_infer, v_infer) = gpt.attention_infer(x, w, allow, causal=True)
    assert y_train.shape == y_infer.shape == (B, L, E)
    torch.testing.assert_close(y_infer, y_train, rtol=0, atol=1e-6)
    assert torch.equal(k_train, k_infer) and torch.equal(v_train, v_infer)  # the same projection
    # The last query alone, as the DT's and TT's last blocks compute it.
    y_last, _ = gpt.attention_infer(x, w, _rows(allow, L - 1, L), n_query=1)
    torch.testing.assert_close(y_last, y_train[:, -1:], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mask", list(_masks()))
@pytest.mark.parametrize("prefix", [0, 1, 6, L - 1])
@torch.no_grad()
def test_inference_kernel_after_a_cache_prefix_equals_training_kernel(mask, prefix):
    body, w, x = _setup(1)
    allow = _masks()[mask]
    y_train, _ = gpt.attention_train(x, w, allow, causal=True)
    cache = gpt.KVCache(body, B, L)
    outputs = []
    if prefix:
        y, _ = gpt.attention_infer(x[:, :prefix], w, _rows(allow, 0, prefix), cache=cache)
        cache.length = prefix
        outputs.append(y)
    for p in range(prefix, L, 2):  # then two tokens at a time
        stop = min(p + 2, L)
        y, (k, v) = gpt.attention_infer(x[:, p:stop], w, _rows(allow, p, stop), cache=cache)
        assert k.shape == v.shape == (B, N_HEAD, stop, E // N_HEAD)
        cache.length = stop
        outputs.append(y)
    torch.testing.assert_close(torch.cat(outputs, dim=1), y_train, rtol=0, atol=1e-6)
    # The cache holds what one pass over the whole sequence computes (to rounding: a GEMM's last bits may depend
    # on its row count, as MKL's do on AMD EPYC).
    _, (k_full, v_full) = gpt.attention_infer(x, w, allow, causal=True)
    torch.testing.assert_close(cache.k[0], k_full, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cache.v[0], v_full, rtol=1e-6, atol=1e-6)


@torch.no_grad()
def test_block_inference_with_a_cache_equals_the_blocks_in_training_mode_without_dropout():
    torch.manual_seed(2)
    body = _Body(n_layer=2)
    x, allow = torch.randn(B, L, E), _masks()["value columns"]
    want = x
    for block in body.train().blocks:
        want, _ = block(want, allow)
    cache, got, prefix = gpt.KVCache(body.eval(), B, L), [], 5
    for start, stop in ((0, prefix), (prefix, L)):
        h = x[:, start:stop]
        for i, weights in enumerate(cache.weights):
            h = gpt.block_inference(weights, h, _rows(allow, start, stop), cache=cache, layer=i)
        cache.length = stop
        got.append(h)
    torch.testing.assert_close(torch.cat(got, dim=1), want, rtol=0, atol=1e-5)


def test_builtin_causal_mask_is_refused_where_queries_are_not_the_keys():
    body, w, x = _setup()
    with pytest.raises(ValueError, match="pass the causal rows of the queries as allow"):
        gpt.attention_infer(x, w, None, causal=True, n_query=1)
    with pytest.raises(ValueError, match="pass the causal rows of the queries as allow"):
        gpt.attention_infer(x, w, None, causal=True, cache=gpt.KVCache(body, B, L))
