"""The optimizer audit on NumPy candidates: correct ones agree in float32 and float64, and each deliberately wrong
one is caught at the scale and step where it first parts, with the catalogue's variant named."""
import math

import numpy as np
import pytest

from audit_candidates import numpy_candidates as candidates
from minibng import audit

CORRECT = [("adamng", candidates.adamng, {}), ("sgdmng", candidates.sgdmng, {}),
           ("adamng", candidates.returns_a_new_dict, {})]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reference, factory, settings", CORRECT, ids=lambda v: getattr(v, "__name__", None))
def test_a_correct_implementation_agrees_at_every_scale(reference, factory, settings, dtype):
    report = audit.audit_optimizer(reference, factory, "numpy", dtype=dtype, **settings)
    assert report.agrees, report
    assert [run.scale for run in report.runs] == [1, 1e-30, 1e30, 0]
    assert all(run.worst < 1 for run in report.runs)
    assert report.as_json()["first"] is None and report.as_json()["variant"] is None


# (reference, wrong implementation, dtype, scale and step where it first parts, the variant that explains it)
WRONG = [
    ("adamng", candidates.adamng_naive, "float32", 1e-30, 1, "naive-norm"),
    ("adamng", candidates.adamng_per_tensor, "float64", 1, 1, "per-tensor-blocks"),
    ("adamng", candidates.adamng_without_bias_correction, "float64", 1, 1, "no-bias-correction"),
    ("adamng", candidates.adamng_unguarded, "float64", 0, 1, "unguarded-zero-block"),
    ("adam", candidates.adam_eps_in_sqrt, "float64", 1, 1, "eps-inside-sqrt"),
    ("sgdmng", candidates.sgdmng_velocity_normalized, "float64", 1, 2, "normalized-step"),
    ("sgdmng", candidates.sgdmng_nesterov, "float32", 1, 1, "nesterov"),
]


@pytest.mark.parametrize("reference, factory, dtype, scale, step, variant", WRONG,
                         ids=[case[1].__name__ for case in WRONG])
def test_a_wrong_implementation_is_caught_where_it_first_parts(reference, factory, dtype, scale, step, variant):
    report = audit.audit_optimizer(reference, factory, "numpy", dtype=dtype)
    assert not report.agrees
    assert (report.first.scale, report.first.step, report.variant) == (scale, step, variant), report
    first = report.as_json()["first"]
    assert first["block"] == {"name": report.first.block, "size": report.first.size}
    if math.isfinite(first["candidate"]):   # the unguarded division's is NaN
        assert math.isclose(first["difference"], first["candidate"] - first["reference"], rel_tol=1e-12)
    assert f"variant:   {variant}" in str(report)


def test_the_naive_float32_norm_parts_where_its_squares_underflow_and_overflow():
    """At scale 1 the naive norm is exact enough; at 1e-30 its squares vanish (‖g‖ = 0) and at 1e30 they overflow."""
    report = audit.audit_optimizer("adamng", candidates.adamng_naive, "numpy", dtype="float32")
    assert [run.agrees for run in report.runs] == [True, False, False, True]
    assert report.first.block == "0" and report.first.stage == "block norms ‖g^i‖"
    assert report.first.reference != 0 and report.first.candidate == 0
    assert "→ norms" in report.first.chain and "→ block 1 →" in report.first.chain


def test_the_naive_norm_is_exact_in_float64_at_these_scales():
    assert audit.audit_optimizer("adamng", candidates.adamng_naive, "numpy", dtype="float64").agrees


def test_every_block_adds_a_run_per_block():
    report = audit.audit_optimizer("adamng", candidates.adamng, "numpy", scales=(1e-30,), every_block=True)
    assert [(run.block, run.size) for run in report.runs] == [("0", 35), ("2", 24), ("4", 15)]
    assert report.agrees


def test_a_candidate_that_raises_is_reported_at_its_step():
    report = audit.audit_optimizer("sgd", candidates.raises_at_step_two, "numpy", scales=(1,))
    assert not report.agrees and report.first.step == 2 and report.variant is None
    assert "raised FloatingPointError: overflow in my update" in report.first.stage


def test_settings_reach_the_reference():
    """A wrong lr is not the candidate's fault: with the right --set the same candidate agrees."""
    assert not audit.audit_optimizer("adamng", lambda: candidates.adam(lr=0.01), "numpy", scales=(1,)).agrees
    assert audit.audit_optimizer("adamng", lambda: candidates.adam(lr=0.01), "numpy", scales=(1,), lr=0.01).agrees


@pytest.mark.parametrize("options, message", [
    ({"reference": "adamm"}, "unknown optimizer 'adamm'"),
    ({"framework": "jax"}, "unknown framework 'jax'"),
    ({"dtype": "float16"}, "dtype: expected one of float64, float32"),
    ({"steps": 0}, "steps: expected an integer"),
    ({"scales": (1, float("inf"))}, "each scale must be a finite number >= 0"),
    ({"scales": (-1,)}, "each scale must be a finite number >= 0"),
    ({"lr": -1}, "lr"),
    ({"momentun": 0.9}, "momentun"),
])
def test_bad_options_are_refused_before_any_run(options, message):
    arguments = {"reference": "adamng", "candidate": candidates.adamng, "framework": "numpy", **options}
    with pytest.raises((ValueError, TypeError), match=message):
        audit.audit_optimizer(**arguments)


def test_a_factory_that_returns_no_step_is_a_candidate_error():
    with pytest.raises(audit.CandidateError, match="returned int, which is not callable"):
        audit.audit_optimizer("adamng", candidates.not_callable, "numpy")


def test_the_tolerance_is_stated_and_grows_with_steps():
    tolerance = audit.Tolerance("float32")
    assert tolerance.relative(3) == 3 * tolerance.relative(1) == 3 * 256 * np.finfo(np.float32).eps
    assert "256·ε·t" in tolerance.describe() and tolerance.as_json()["dtype"] == "float32"
