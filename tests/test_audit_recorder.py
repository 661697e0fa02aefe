"""Theorem 1's recorder: η and δ read from AdaGradBNG, a verdict with both bounds, the slack and every term."""
import numpy as np
import pytest

from minibng import audit, optim
from minibng.nn.module import Parameter


def quadratic_run(steps=30, lr=0.3, delta=1e-6, change_lr_at=None):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(3)), Parameter(rng.standard_normal(2))]
    opt = optim.AdaGradBNG(params, lr=lr, delta=delta)
    centre = rng.standard_normal(5)
    losses = []   # the noise of each step's loss, to evaluate F_t at the comparator
    with audit.BoundRecorder(opt) as recorder:
        for t in range(steps):
            if t == change_lr_at:
                opt.lr = lr / 2
            noise = rng.standard_normal(5) * 0.1
            x = np.asarray(opt.flat.x).copy()
            losses.append(noise)
            loss = 0.5 * np.sum((x - centre) ** 2) + noise @ x
            gradient = x - centre + noise
            params[0].grad[...], params[1].grad[...] = gradient[:3], gradient[3:]
            opt.step()
            recorder.add_loss(loss)
    comparator_losses = [noise @ centre for noise in losses]   # F_t(u) at u = centre, where ½‖u − centre‖² = 0
    return recorder, centre, comparator_losses


def test_the_verdict_matches_the_bound_of_the_recorded_run():
    recorder, u, comparator_losses = quadratic_run()
    verdict = recorder.verdict(u, comparator_losses)
    assert verdict.holds and verdict.lr == 0.3 and verdict.delta == 1e-6 and verdict.bound.steps == 30
    again = audit.adagrad_bng_bound(np.array(recorder.iterates), np.array(recorder.gradients), u, [3, 2], 0.3, 1e-6)
    assert verdict.bound.first == pytest.approx(again.first) and verdict.slack == pytest.approx(again.first /
                                                                                                verdict.regret)
    b = verdict.bound
    assert b.first == pytest.approx(b.initial_term + b.distance_term + b.gradient_term)
    assert b.second == pytest.approx(b.initial_term + b.distance_term_worst + b.gradient_term_worst)
    text = str(verdict)
    assert "Theorem 1 HOLDS" in text and "read from the optimizer" in text and "slack" in text


def test_a_regret_above_the_bound_is_reported_as_violated():
    recorder, u, comparator_losses = quadratic_run()
    inflated = [c - 1e3 for c in comparator_losses]   # comparator losses no run could have: regret above the bound
    verdict = recorder.verdict(u, inflated)
    assert not verdict.holds and "VIOLATED" in str(verdict)


def test_only_adagradbng_with_a_constant_lr_is_accepted():
    with pytest.raises(TypeError, match="Theorem 1 bounds AdaGradBNG.*got Adam"):
        audit.BoundRecorder(optim.Adam([Parameter(np.zeros(2))]))
    recorder, u, comparator_losses = quadratic_run(change_lr_at=10)
    with pytest.raises(ValueError, match="lr changed at step 11"):
        recorder.verdict(u, comparator_losses)
    with pytest.raises(ValueError, match="30 steps were recorded, with 30 losses .* and 29 comparator losses"):
        recorder.verdict(u, comparator_losses[:-1])


def test_a_recorder_that_did_not_see_every_step_is_refused():
    """Attached mid-run, s_t already holds steps the recorder never saw and the bound no longer applies."""
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(3))]
    opt = optim.AdaGradBNG(params, lr=0.3, delta=1e-6)

    def step():
        params[0].grad[...] = rng.standard_normal(3)
        opt.step()

    step()
    with pytest.raises(ValueError, match="taken 1 steps, of which this recorder saw 0.*before the optimizer's first"):
        with audit.BoundRecorder(opt):
            step()
    assert opt.chain.observers == [] and opt.step_count == 1
    opt = optim.AdaGradBNG(params, lr=0.3, delta=1e-6)
    recorder = audit.BoundRecorder(opt)
    with recorder:
        step()
    with recorder:                       # re-attached where it left: it has seen every step
        step()
    step()                               # a step taken while detached
    with pytest.raises(ValueError, match="taken 3 steps, of which this recorder saw 2"):
        with recorder:
            step()
    assert recorder.steps == 2
