"""`audit self`: minibng's presets against torch.optim and optax — they agree in float64 at every scale; in float32
optax's LARS parts at gradient scale 1e-30, where its naive norm underflows, and the audit names that variant."""
from audit_support import require
from minibng.audit import audit_self
from minibng.audit.cli import main
from minibng.audit.self_check import presets_without_counterpart

require("torch")
require("optax")


def test_every_pair_agrees_in_float64(capsys):
    assert main(["self", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "torch.optim.Adam(lr=0.001)" in out and "optax.lamb(0.001, weight_decay=0.01)" in out
    assert "parts" not in out and "adamng" in out.splitlines()[-1]
    assert "adamng" in presets_without_counterpart() and "adam" not in presets_without_counterpart()


def test_in_float32_only_optax_lars_parts_and_its_naive_norm_is_named():
    results, skipped = audit_self(dtype="float32", steps=3)
    assert skipped == {}
    parted = {pair.label: audit for pair, audit in results if not audit.agrees}
    assert list(parted) == ["optax.lars(0.1, trust_coefficient=0.02)"]
    audit = parted["optax.lars(0.1, trust_coefficient=0.02)"]
    assert (audit.first.scale, audit.first.step, audit.variant) == (1e-30, 1, "naive-norm")
