"""The optimizer audit on optax candidates (skips without optax and jax, fails in CI: MINIBNG_REQUIRE_AUDIT_FRAMEWORKS).

The mirror hands the GradientTransformation the tree {"0": {"weight", "bias"}, …}; float64 runs inside
jax.enable_x64.  Correct candidates agree in float32 and float64, wrong ones are caught where they first part."""
import pytest

from audit_support import require
from minibng import audit

candidates = require("optax")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_correct_adamng_agrees_at_every_scale(dtype):
    report = audit.audit_optimizer("adamng", candidates.adamng, "optax", dtype=dtype)
    assert report.agrees, report


WRONG = [
    (candidates.adamng_naive, "float32", 1e-30, 1, "naive-norm"),
    (candidates.adamng_global, "float64", 1, 1, "global-blocks"),
    (candidates.adamng_without_bias_correction, "float32", 1, 1, "no-bias-correction"),
]


@pytest.mark.parametrize("factory, dtype, scale, step, variant", WRONG, ids=[case[0].__name__ for case in WRONG])
def test_a_wrong_implementation_is_caught_where_it_first_parts(factory, dtype, scale, step, variant):
    report = audit.audit_optimizer("adamng", factory, "optax", dtype=dtype)
    assert (report.first.scale, report.first.step, report.variant) == (scale, step, variant), report


def test_optax_state_is_read_under_minibngs_names():
    """optax's mu and nu are Adam's exp_avg and exp_avg_sq: without bias correction they still agree, so the stage
    is the update."""
    from minibng.audit.optax_mirror import OptaxMirror
    from minibng.audit.stream import GradientStream, audit_model

    model = audit_model()
    stream = GradientStream(model, 2)
    run = OptaxMirror().run(candidates.adamng_without_bias_correction, model, stream, stream.gradients, "float64")
    assert set(run.states[0]) >= {"exp_avg", "exp_avg_sq"}
    report = audit.audit_optimizer("adamng", candidates.adamng_without_bias_correction, "optax", scales=(1,))
    assert report.variant == "no-bias-correction" and report.first.stage == "update u"


def test_a_factory_that_returns_no_transformation_is_a_candidate_error():
    with pytest.raises(audit.CandidateError, match="not an optax GradientTransformation"):
        audit.audit_optimizer("adam", candidates.not_a_transformation, "optax")
