"""Refactors keep seeded trainings byte-identical: tiny DT, TT, BC and Online DT runs end with the same weights.

Each run's final weights are hashed (sha256 over the sorted tensor names, dtypes, shapes and bytes) and compared
with ``data/weight_fingerprints.json``, recorded per torch version and CPU kind (``matmul_isa``: float rounding
in matmuls differs between kinds, so one recording cannot hold on every machine). A kind with no recording skips
with what to run; record one on a commit whose trainings are known good:

    OMP_NUM_THREADS=1 python tests/test_weight_fingerprints.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from conftest import TOY_ID  # noqa: E402

from seqpolicy.common.threads import intra_op_threads, matmul_isa  # noqa: E402

RECORD = HERE / "data" / "weight_fingerprints.json"
KINDS = ("dt", "tt", "bc", "odt")


def machine_key() -> str:
    return f"torch {torch.__version__.split('+')[0]} / {matmul_isa()}"


def fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def train(kind: str) -> torch.nn.Module:
    """A tiny seeded fp32 run of ``kind`` on the PointReach toy data; its final model."""
    from seqpolicy.toy import make_toy_dataset

    data = make_toy_dataset(40, seed=0)
    common = dict(device="cpu", precision="fp32", progress=False, seed=7)
    with intra_op_threads(1):
        if kind == "dt":
            from seqpolicy import train_dt
            agent = train_dt(data, env_id=TOY_ID, max_steps=12, context_length=4, hidden_size=16, n_layer=1,
                             n_head=1, batch_size=8, warmup_steps=5, learning_rate=1e-3, return_scale=50.0,
                             eval_every=0, **common)
        elif kind == "tt":
            from seqpolicy import train_tt
            from seqpolicy.training.tt import TTTrainConfig
            cfg = TTTrainConfig.preset("pointreach", n_embd=16, max_steps=6, batch_size=8, eval_every=0)
            agent = train_tt(data, cfg, env_id=TOY_ID, **common)
        elif kind == "bc":
            from seqpolicy import train_bc
            agent = train_bc(data, env_id=TOY_ID, max_steps=30, eval_every=0, **common)
        else:
            from seqpolicy.training.odt import train_odt
            agent = train_odt(data, env_id=TOY_ID, context_length=4, acting_context_length=None, hidden_size=16,
                              n_layer=1, n_head=1, batch_size=8, warmup_steps=3, learning_rate=1e-3,
                              return_scale=50.0, max_steps=6, eval_every=0, online_steps=200, online_target=50.0,
                              buffer_size=20, episodes_per_iteration=2, updates_per_env_step=0.05,
                              online_eval_every=0, online_checkpoint_every=0, likelihood_beta=0.5, **common)
    return agent.policy if kind == "bc" else agent.model


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_training_ends_with_the_recorded_weights(kind):
    recorded = json.loads(RECORD.read_text()).get(machine_key()) if RECORD.is_file() else None
    if not recorded or kind not in recorded:
        pytest.skip(f"no weight fingerprint recorded for {machine_key()}: run `python {Path(__file__).name} "
                    "--record` on a known-good commit to add one")
    assert fingerprint(train(kind)) == recorded[kind], (
        f"the seeded tiny {kind} run ends with other weights than recorded for {machine_key()}: a change altered "
        "training (data order, initialisation, loss or optimiser maths). If that is intended, say so and record "
        "anew with --record.")


def test_fingerprint_sees_one_changed_bit():
    model = torch.nn.Linear(3, 2)
    before = fingerprint(model)
    with torch.no_grad():
        model.weight.view(-1)[0] = torch.nextafter(model.weight.view(-1)[0], torch.tensor(1e9))
    assert fingerprint(model) != before


if __name__ == "__main__":
    if "--record" not in sys.argv[1:]:
        sys.exit(__doc__)
    doc = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    doc[machine_key()] = {kind: fingerprint(train(kind)) for kind in KINDS}
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"recorded {machine_key()}: {doc[machine_key()]}")
