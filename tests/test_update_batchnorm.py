"""update_batchnorm ("precise BN"): running statistics re-estimated as the mean of batch statistics, nothing else."""
import numpy as np
import pytest

import minibng as mb
from minibng import nn, optim
from minibng.data import Batches, synthetic
from minibng.train import Trainer, evaluate, update_batchnorm
from support import host, on


def batch_list(device, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [(on(device, rng.normal(2.0, 3.0, size=s).astype(np.float32)), on(device, np.zeros(s[0], np.int64)))
            for s in shapes]


def test_running_statistics_become_the_mean_of_the_batch_statistics(device):
    """BatchNorm2d first, so its input is the data: mean over batches of per-channel means and unbiased variances."""
    mb.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)).to(device)
    batches = batch_list(device, [(4, 3, 5, 5), (6, 3, 5, 5), (5, 3, 5, 5)])
    assert update_batchnorm(model, batches) == 3
    images = [host(x).astype(np.float64) for x, _ in batches]
    expected_mean = np.mean([x.mean(axis=(0, 2, 3)) for x in images], axis=0)
    expected_var = np.mean([x.var(axis=(0, 2, 3), ddof=1) for x in images], axis=0)
    np.testing.assert_allclose(host(model[0].running_mean), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(host(model[0].running_var), expected_var, rtol=1e-5)


def test_only_the_running_statistics_change_and_at_most_max_batches_are_used(device):
    mb.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.Linear(6, 2)).to(device)
    model.eval()
    weights = {name: host(p.data).copy() for name, p in model.named_parameters()}
    stream = model[2].rng.state()
    batches = batch_list(device, [(8, 4)] * 5)
    assert update_batchnorm(model, batches, max_batches=2) == 2
    assert not model.training and model[1].momentum == 0.1 and model[2].rng.state() == stream
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(host(p.data), weights[name], err_msg=name)
    from_max_batches = host(model[1].running_mean).copy()
    update_batchnorm(model, batches[:2])
    np.testing.assert_array_equal(host(model[1].running_mean), from_max_batches)


def test_models_without_batchnorm_are_left_alone_and_empty_input_is_an_error(device):
    assert update_batchnorm(nn.Sequential(nn.Linear(3, 2)).to(device), batch_list(device, [(4, 3)])) == 0
    with pytest.raises(ValueError, match="no batches"):
        update_batchnorm(nn.Sequential(nn.BatchNorm1d(3)).to(device), [])
    with pytest.raises(ValueError, match="max_batches must be >= 1"):
        update_batchnorm(nn.Sequential(nn.BatchNorm1d(3)).to(device), batch_list(device, [(4, 3)]), max_batches=0)


def test_non_finite_old_statistics_are_replaced_and_a_failure_restores_them(device):
    model = nn.Sequential(nn.BatchNorm1d(3)).to(device)
    model[0].running_var[...] = float("nan")
    update_batchnorm(model, batch_list(device, [(5, 3)]))
    assert np.isfinite(host(model[0].running_var)).all()
    before = host(model[0].running_mean).copy(), host(model[0].running_var).copy()
    bad = batch_list(device, [(5, 3), (5, 4)], seed=1)  # the second batch has the wrong width
    with pytest.raises(ValueError, match="expected input of shape"):
        update_batchnorm(model, bad)
    np.testing.assert_array_equal(host(model[0].running_mean), before[0])
    np.testing.assert_array_equal(host(model[0].running_var), before[1])
    assert model[0].momentum == 0.1


def test_trainer_evaluates_with_statistics_re_estimated_for_the_final_weights(device):
    x, y = synthetic.blobs(n=200, features=5, classes=3, seed=0)

    test = Batches(x[:60], y[:60], 30, shuffle=False, device=device)

    def fit(bn_batches):
        mb.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(device)
        train = Batches(x, y, 20, shuffle=True, seed=0, device=device)
        trainer = Trainer(model, nn.SoftmaxCrossEntropy(), optim.create("sgdm", model, lr=0.5), train, 2,
                          evaluate={"test": test}, progress=False, bn_batches=bn_batches)
        return trainer.fit(), model

    plain, _ = fit(None)
    bn_batches = Batches(x[:80], y[:80], 20, shuffle=False, device=device)
    precise, model = fit(bn_batches)
    assert [h["train_loss"] for h in precise] == [h["train_loss"] for h in plain]  # training itself is untouched
    assert precise[-1]["test_loss"] != plain[-1]["test_loss"]
    assert precise[-1]["test_loss"] == evaluate(model, nn.SoftmaxCrossEntropy(), test)["loss"]  # updated, then read
    settled = host(model[1].running_var).copy()
    update_batchnorm(model, bn_batches)  # the weights did not change since: the same statistics again
    np.testing.assert_allclose(host(model[1].running_var), settled, rtol=1e-6)
    with pytest.raises(ValueError, match="must not shuffle"):
        Trainer(model, nn.SoftmaxCrossEntropy(), optim.create("sgdm", model), test, 1,
                bn_batches=Batches(x, y, 20, shuffle=True, device=device))
