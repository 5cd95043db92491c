"""The training fast paths compute what the reference paths compute.

- the cheap dropout mask keeps units at the rate asked for, and repeats under ``torch.manual_seed``;
- a block's training path (baddbmm attention, folded dropout scales) equals the same maths
  written with plain ops and the very same dropout masks, and with no dropout equals the eval path (SDPA);
- the TT's per-dimension ``loss`` equals ``forward``'s loss;
- micro-batches give the same losses as one batch;
- precision settings are resolved, validated and recorded.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import seqpolicy
from seqpolicy.models import gpt
from seqpolicy.models.decision_transformer import DecisionTransformer, DTConfig
from seqpolicy.models.trajectory_transformer import TrajectoryTransformer, TTConfig
from seqpolicy.toy import make_toy_dataset
from seqpolicy.training import speed


def test_dropout_mask_rate_and_repeatability():
    torch.manual_seed(0)
    keep = gpt.dropout_keep((1000, 1000), 0.1)
    assert keep.dtype == torch.float32 and keep.shape == (1000, 1000)
    assert set(keep.unique().tolist()) == {0.0, 1.0}
    assert abs(keep.mean().item() - 0.9) < 2e-3
    assert gpt.dropout_keep((4, 4), 0.5, torch.bfloat16).dtype == torch.bfloat16
    assert abs(gpt.dropout_keep((200_000,), 0.5).mean().item() - 0.5) < 5e-3
    torch.manual_seed(1)
    a = gpt.dropout_keep((7, 13), 0.3)
    torch.manual_seed(1)
    assert torch.equal(a, gpt.dropout_keep((7, 13), 0.3))
    assert gpt.dropout_keep((5,), 0.0).all()
    assert not gpt.dropout_keep((5,), 1.0).any()


def _recording_masks(monkeypatch) -> list[torch.Tensor]:
    masks: list[torch.Tensor] = []
    real = gpt.dropout_keep

    def record(shape, p, dtype=torch.float32, device="cpu"):
        masks.append(real(shape, p, dtype, device))
        return masks[-1]

    monkeypatch.setattr(gpt, "dropout_keep", record)
    return masks


@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("n_head", [1, 4])
def test_block_training_path_equals_plain_maths_with_the_same_masks(monkeypatch, activation, n_head):
    torch.manual_seed(0)
    e, n, b, p = 32, 9, 3, 0.2
    block = gpt.Block(e, n_head, 4 * e, activation, attn_pdrop=p, resid_pdrop=p).train()
    x = torch.randn(b, n, e, requires_grad=True)
    allow = torch.ones(n, n, dtype=torch.bool).tril()
    allow[:, 2] = False  # a column nobody may read (like the TT's value tokens)
    allow[2, 2] = True  # rows keep at least one key
    masks = _recording_masks(monkeypatch)
    y, _ = block(x, allow)
    assert len(masks) == 3  # attention probabilities, attention output, MLP output

    # The same maths with plain ops, dropout as mask / (1 - p).
    hd = e // n_head
    q, k, v = F.linear(block.ln_1(x), block.attn.qkv.weight, block.attn.qkv.bias).split(e, dim=2)
    q, k, v = (t.view(b, n, n_head, hd).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    probs = torch.softmax(scores.masked_fill(~allow, float("-inf")), dim=-1)
    probs = probs * masks[0].view(b, n_head, n, n) / (1 - p)
    att = (probs @ v).transpose(1, 2).reshape(b, n, e)
    h = x + F.linear(att, block.attn.proj.weight, block.attn.proj.bias) * masks[1] / (1 - p)
    act = F.gelu if activation == "gelu" else F.relu
    mlp = F.linear(act(F.linear(block.ln_2(h), block.mlp.fc.weight, block.mlp.fc.bias)), block.mlp.proj.weight,
                   block.mlp.proj.bias)
    expected = h + mlp * masks[2] / (1 - p)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    # Gradients flow the same way.
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    (grad_ref,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


def test_training_path_without_dropout_equals_eval_path():
    torch.manual_seed(0)
    dt = DecisionTransformer(DTConfig(state_dim=5, act_dim=2, hidden_size=32, n_head=2, max_ep_len=50,
                                      resid_pdrop=0, embd_pdrop=0, attn_pdrop=0))
    s, a, r = torch.randn(4, 6, 5), torch.randn(4, 6, 2), torch.randn(4, 6, 1)
    ts, keep = torch.randint(0, 50, (4, 6)), torch.ones(4, 6, dtype=torch.long)
    keep[0, :3] = 0
    train_out = dt.train()(s, a, r, ts, keep)
    eval_out = dt.eval()(s, a, r, ts, keep)
    for got, want in zip(train_out, eval_out, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    tt = TrajectoryTransformer(TTConfig(observation_dim=3, action_dim=2, block_size=20, n_layer=2, n_embd=16,
                                        n_head=2, embd_pdrop=0, resid_pdrop=0, attn_pdrop=0))
    tokens = torch.randint(0, 100, (3, 20))
    torch.testing.assert_close(tt.train()(tokens)[0], tt.eval()(tokens)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [34, 20, 7])
def test_tt_loss_equals_forward_loss(length):
    torch.manual_seed(0)
    tt = TrajectoryTransformer(TTConfig(observation_dim=3, action_dim=2, block_size=34, n_layer=2, n_embd=16,
                                        n_head=2)).eval()
    x, y = torch.randint(0, 101, (4, length)), torch.randint(0, 101, (4, length))
    mask = (torch.rand(4, length) > 0.3).long()
    with torch.no_grad():
        torch.testing.assert_close(tt.loss(x, y, mask), tt(x, y, mask)[1])
        torch.testing.assert_close(tt.loss(x, y), tt(x, y)[1])


def test_tt_loss_differs_when_the_weights_do():
    """The per-dimension weights reach the loss (a guard against a loss that ignores them)."""
    torch.manual_seed(0)
    cfg = dict(observation_dim=3, action_dim=2, block_size=13, n_layer=1, n_embd=16, n_head=2)
    a, b = TrajectoryTransformer(TTConfig(**cfg)).eval(), TrajectoryTransformer(TTConfig(**cfg, action_weight=1.0))
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 100, (2, 13)), torch.randint(0, 100, (2, 13))
    with torch.no_grad():
        assert not torch.allclose(a.loss(x, y), b.eval().loss(x, y))
        torch.testing.assert_close(b.loss(x, y), b(x, y)[1])


@pytest.mark.parametrize("trainer", ["dt", "tt"])
def test_micro_batches_give_the_losses_of_one_batch(monkeypatch, trainer, tmp_path):
    import csv

    from seqpolicy.training import dt, tt

    data = make_toy_dataset(20, seed=0)
    module, train = (dt, dt.train_dt) if trainer == "dt" else (tt, tt.train_tt)
    settings = dict(batch_size=12, max_steps=3, log_every=1, eval_every=0, checkpoint_every=0, progress=False,
                    device="cpu", precision="fp32", dropout=0.0)
    if trainer == "dt":
        settings.update(hidden_size=16, n_layer=1, context_length=4, warmup_steps=1)
    else:
        settings.update(n_embd=16, n_layer=1, n_bins=10, seq_transitions=2, warmup_steps=1)
    losses = {}
    for chunks in (1, 4):
        monkeypatch.setattr(module, "micro_batches", lambda *a, chunks=chunks, **k: chunks)
        agent = train(data, run_dir=tmp_path / f"{trainer}{chunks}", **settings)
        assert agent.info["micro_batches"] == chunks
        with open(tmp_path / f"{trainer}{chunks}" / "log.csv") as f:
            losses[chunks] = [float(r["train/loss"]) for r in csv.DictReader(f)]
    assert len(losses[1]) == 3
    assert losses[4] == pytest.approx(losses[1], rel=1e-4)


def test_micro_batches_keep_activations_under_the_budget():
    assert speed.micro_batches(256, 1000, budget=64_000) == 4  # 64 samples of 1000 bytes fit
    assert speed.micro_batches(64, 10, budget=10**6) == 1
    assert speed.micro_batches(8, 10**9, budget=10) == 8  # never more micro-batches than samples
    assert speed.micro_batches(256, 10**9, torch.device("cuda")) == 1  # a CPU allocator matter only


def test_precision_is_resolved_validated_and_recorded():
    cpu = torch.device("cpu")
    assert speed.resolve_precision("fp32", cpu) == "fp32"
    assert speed.resolve_precision("bf16", cpu) == "bf16"
    assert speed.resolve_precision("auto", cpu) == ("bf16" if speed.fast_bf16(cpu) else "fp32")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        seqpolicy.train_dt(make_toy_dataset(5), precision="fp16")
    agent = seqpolicy.train_dt(make_toy_dataset(10), hidden_size=16, n_layer=1, max_steps=2, eval_every=0,
                               progress=False, device="cpu", precision="bf16")
    assert agent.info["precision"] == "bf16" and agent.info["train_config"]["precision"] == "bf16"
    for p in agent.model.parameters():  # master weights stay fp32
        assert p.dtype == torch.float32


def test_keep_freed_memory_is_safe_to_call():
    assert speed.keep_freed_memory() in (True, False)
