"""The training loop: it learns, logs, checkpoints atomically, resumes bit-identically and stops on NaN."""
import json
import os

import numpy as np
import pytest

import minibng as mb
from minibng import nn, optim
from minibng.data import Batches, synthetic
from minibng.train import NonFiniteError, Trainer, evaluate
from support import host, on


def make_trainer(device, out=None, epochs=3, optimizer="adamng", lr=0.02, dropout=0.2, seed=0):
    x, y = synthetic.blobs(n=300, features=8, classes=3, seed=seed)
    mb.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 3)).to(device)
    opt = optim.create(optimizer, model, lr=lr)
    train = Batches(x, y, 32, shuffle=True, seed=seed, device=device)
    test = Batches(x[:100], y[:100], 50, shuffle=False, device=device)
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, evaluate={"test": test},
                   schedule=optim.MultiStep([2], 0.5), out=out, progress=False)


def test_training_lowers_the_loss_and_records_each_epoch(device):
    history = make_trainer(device, epochs=4).fit()
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.9
    assert [h["lr"] for h in history] == pytest.approx([0.02, 0.01, 0.01, 0.01])
    assert all(len(h["block_norms"]) == 2 and min(h["block_norms"]) > 0 for h in history)


def test_logs_and_checkpoint_are_written(device, tmp_path):
    make_trainer(device, out=str(tmp_path), epochs=2).fit()
    header, *rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert header.split(",")[:3] == ["epoch", "train_loss", "lr"] and "test_accuracy" in header and len(rows) == 2
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2] and len(lines[0]["block_norms"]) == 2
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as data:
        assert "model/0.weight" in data.files and any(k.startswith("optim/") for k in data.files)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_resume_after_an_interruption_gives_identical_results(device, tmp_path):
    """Run 2 epochs, 'crash', resume to 4: the same numbers and weights as 4 uninterrupted epochs."""
    straight = make_trainer(device, out=str(tmp_path / "a"), epochs=4)
    expected = straight.fit()
    first = make_trainer(device, out=str(tmp_path / "b"), epochs=2)
    first.fit()
    resumed = make_trainer(device, out=str(tmp_path / "b"), epochs=4, seed=0)
    history = resumed.fit(resume=True)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert strip(history) == strip(expected)
    for (name, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(mb.backend.asnumpy(p.data), mb.backend.asnumpy(q.data), err_msg=name)


def test_resume_after_a_kill_mid_epoch(device, tmp_path):
    """A run killed inside epoch 3 restarts from the end of epoch 2 and finishes identically."""
    expected = make_trainer(device, out=str(tmp_path / "a"), epochs=3).fit()

    class Kill(Exception):
        pass

    class KillAtStep:
        def __init__(self, step):
            self.step, self.seen = step, 0

        def on_step_end(self, trainer):
            self.seen += 1
            if self.seen == self.step:
                raise Kill

        def on_epoch_end(self, trainer, metrics):
            pass

    killed = make_trainer(device, out=str(tmp_path / "b"), epochs=3)
    killed.callbacks.append(KillAtStep(2 * len(killed.train_batches) + 3))
    with pytest.raises(Kill):
        killed.fit()
    history = make_trainer(device, out=str(tmp_path / "b"), epochs=3).fit(resume=True)
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in expected]
    assert [h["test_loss"] for h in history] == [h["test_loss"] for h in expected]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(device, tmp_path):
    trainer = make_trainer(device, out=str(tmp_path), epochs=3, optimizer="sgd", lr=1.0)
    trainer.fit()  # 3 good epochs
    good = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.epochs = 5
    trainer.model[0].weight.data[...] = np.inf
    with pytest.raises(NonFiniteError, match=r"NaN/infinite in epoch 4 .*last good checkpoint .* after epoch 3"):
        trainer.fit()
    assert (tmp_path / "checkpoint.npz").read_bytes() == good


def test_evaluate_counts_every_row(device):
    """Loss and accuracy are means over every row, the short last batch included: 100 rows in batches of 30, 30, 30
    and 10 give the full batch's numbers (a count by batches, 4 × 30, or a mean of batch means would not)."""
    trainer = make_trainer(device, epochs=0)
    x, y = synthetic.blobs(n=100, features=8, classes=3, seed=1)
    result = evaluate(trainer.model, trainer.loss_fn, Batches(x, y, 30, shuffle=False, device=device))
    trainer.model.eval()
    logits = host(trainer.model(on(device, x))).astype(np.float64)
    trainer.model.train()
    log_probabilities = logits - logits.max(axis=1, keepdims=True)
    log_probabilities -= np.log(np.exp(log_probabilities).sum(axis=1, keepdims=True))
    assert result["loss"] == pytest.approx(-log_probabilities[np.arange(100), y].mean(), rel=1e-5)
    assert result["accuracy"] == (logits.argmax(axis=1) == y).mean()
    assert 0 < result["accuracy"] < 1      # the batches disagree, so a wrong weighting would show
    assert trainer.model.training           # evaluation restores the mode


def test_an_optimizer_without_norm_tracking_still_trains(device):
    x, y = synthetic.blobs(n=100, features=4, classes=2, seed=0)
    model = nn.Sequential(nn.Linear(4, 2)).to(device)
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.1, track_norms=False),
                      Batches(x, y, 25, device=device), epochs=2, progress=False)
    history = trainer.fit()
    assert len(history) == 2 and all(np.isnan(h["block_norms"]).all() for h in history)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_parameters_made_infinite_by_the_last_step_are_never_checkpointed(device, tmp_path):
    trainer = make_trainer(device, out=str(tmp_path), epochs=1)
    trainer.fit()
    good = (tmp_path / "checkpoint.npz").read_bytes()

    class PoisonLastStep:
        def on_step_end(self, trainer):
            if trainer.train_batches.batch == 0:  # the iterator has just handed out the epoch's last batch
                trainer.model[0].weight.data[...] = np.inf

        def on_epoch_end(self, trainer, metrics):
            pass

    trainer.epochs, trainer.check_every = 2, 10_000
    trainer.callbacks.append(PoisonLastStep())
    with pytest.raises(NonFiniteError, match="epoch 2"):
        trainer.fit()
    assert (tmp_path / "checkpoint.npz").read_bytes() == good


def test_an_evaluation_set_named_train_is_refused():
    """Its loss would replace train_loss (the epoch's mean mini-batch loss) without a word."""
    x, y = synthetic.blobs(n=40, features=4, classes=2, seed=0)
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="named 'train' would replace train_loss.*'train_eval'"):
        Trainer(model, nn.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.1), Batches(x, y, 10), 1,
                evaluate={"train": Batches(x, y, 10, shuffle=False)})


def test_callbacks_hear_where_a_fit_starts(tmp_path):
    """on_fit_start comes after the checkpoint is restored (the history holds the finished epochs); every callback
    method is optional."""
    seen = []

    class Listener:
        def on_fit_start(self, trainer):
            seen.append(len(trainer.history))

    make_trainer("cpu", out=str(tmp_path), epochs=1).fit()
    resumed = make_trainer("cpu", out=str(tmp_path), epochs=2)
    resumed.callbacks.append(Listener())
    resumed.fit(resume=True)
    assert seen == [1] and len(resumed.history) == 2


def test_a_buffer_made_infinite_stops_the_run_before_its_checkpoint(device, tmp_path):
    """A float32 running variance that overflows to ∞ (a BatchNorm fed ~1e20 activations) leaves the loss finite, since
    training normalizes with the batch's statistics; the check of every buffer before the checkpoint stops the run,
    naming the buffer, and the last good checkpoint (which load_state_dict accepts) resumes."""
    def trainer(epochs):
        x, y = synthetic.blobs(n=120, features=4, classes=3, seed=0)
        mb.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)).to(device)
        return Trainer(model, nn.SoftmaxCrossEntropy(), optim.create("adamng", model, lr=0.01),
                       Batches(x, y, 40, seed=0, device=device), epochs, out=str(tmp_path), progress=False)

    class OverflowRunningVariance:
        def on_step_end(self, trainer):
            if len(trainer.history) == 1:            # in epoch 2
                trainer.model[1].running_var[2] = np.inf

    trainer(1).fit()
    good = (tmp_path / "checkpoint.npz").read_bytes()
    overflowing = trainer(2)
    overflowing.callbacks.append(OverflowRunningVariance())
    with pytest.raises(NonFiniteError, match=r"buffer '1\.running_var' became NaN/infinite by the end of epoch 2 "
                                             r".*last good checkpoint .* after epoch 1") as info:
        overflowing.fit(resume=True)
    assert info.value.names == ("1.running_var",) and info.value.epoch == 2 and info.value.finished_epochs == 1
    assert (tmp_path / "checkpoint.npz").read_bytes() == good
    resumed = trainer(2)
    assert len(resumed.fit(resume=True)) == 2 and np.isfinite(host(resumed.model[1].running_var)).all()
