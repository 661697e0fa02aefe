"""The optimizer audit on PyTorch candidates (skips without torch, fails in CI: MINIBNG_REQUIRE_AUDIT_FRAMEWORKS).

The mirror hands FACTORY a torch.nn.Sequential whose Linear weights are minibng's transposed; correct candidates
agree in float32 and float64, wrong ones are caught where they first part, with the variant named."""
import numpy as np
import pytest

from audit_support import require
from minibng import audit

candidates = require("torch")


def test_the_mirror_holds_the_same_parameters_in_pytorchs_layout():
    from minibng.audit.stream import audit_model
    from minibng.audit.torch_mirror import TorchMirror

    model = audit_model(dtype="float32")
    twin = TorchMirror().model(model, "float32")
    for (name, p), (twin_name, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert name == twin_name and q.dtype == candidates.torch.float32
        values = q.detach().numpy()
        np.testing.assert_array_equal(p.data, values.T if values.ndim == 2 else values)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reference, factory, settings", [
    ("adamng", candidates.adamng, {}), ("sgdmng", candidates.sgdmng, {}),
    ("adamng", candidates.adamng_decay, {"weight_decay": 0.01}), ("adam", candidates.adam, {})],
    ids=["adamng", "sgdmng", "adamng-decay", "torch.optim.Adam"])
def test_a_correct_implementation_agrees_at_every_scale(reference, factory, settings, dtype):
    report = audit.audit_optimizer(reference, factory, "torch", dtype=dtype, **settings)
    assert report.agrees, report


WRONG = [
    ("adamng", {}, candidates.adamng_naive, "float32", 1e-30, 1, "naive-norm"),
    # Adam's first step, m̂/(√v̂ + ε) ≈ ±1, hides how the gradient was normalized: float32 parts at step 2
    ("adamng", {}, candidates.adamng_per_tensor, "float32", 1, 2, "per-tensor-blocks"),
    ("adamng", {"weight_decay": 0.01}, candidates.adamng_decay_first, "float64", 1, 1, "decay-before-normalization"),
    ("sgdmng", {}, candidates.sgdmng_velocity_normalized, "float32", 1, 2, "normalized-step"),
]


@pytest.mark.parametrize("reference, settings, factory, dtype, scale, step, variant", WRONG,
                         ids=[case[2].__name__ for case in WRONG])
def test_a_wrong_implementation_is_caught_where_it_first_parts(reference, settings, factory, dtype, scale, step,
                                                               variant):
    report = audit.audit_optimizer(reference, factory, "torch", dtype=dtype, **settings)
    assert (report.first.scale, report.first.step, report.variant) == (scale, step, variant), report


def test_the_stage_is_read_from_pytorchs_state_where_no_variant_explains_the_parting():
    """Adam's exp_avg, read from torch.optim's state, already differs when the rule was fed something else."""
    report = audit.audit_optimizer("adamng", candidates.adam, "torch", scales=(1,))
    assert report.variant is None or report.variant == "no-normalization"
    report = audit.audit_optimizer("adam", candidates.adamng, "torch", scales=(1,))
    assert report.first.step == 1 and report.variant is None
    assert report.first.stage.startswith("rule state exp_avg"), report


def test_a_factory_whose_result_has_no_step_is_a_candidate_error():
    with pytest.raises(audit.CandidateError, match="returned list, which has no step"):
        audit.audit_optimizer("adam", candidates.no_step, "torch")
