"""BlockStepRecorder: every N steps the mean ‖g^i‖ and ‖Δx^i‖ of each block, equal to a naive reference that keeps a
copy of x, read from the device once per record, unchanged by a resume, and without effect on the run."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minibng as mb
from minibng import nn, optim
from minibng.data import Batches, synthetic
from minibng.optim.transforms import UpdateTransform
from minibng.train import BlockStepRecorder, Trainer, recorders
from support import host

STEPS_PER_EPOCH = 10   # 200 samples in batches of 20


def make_trainer(device, callbacks=(), out=None, epochs=2, optimizer="adamng", dtype="float32", samples=200, **options):
    x, y = synthetic.blobs(n=samples, features=6, classes=3, seed=1, dtype=np.dtype(dtype).type)
    mb.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5, dtype=dtype), nn.Sigmoid(), nn.Linear(5, 4, dtype=dtype), nn.Sigmoid(),
                          nn.Linear(4, 3, dtype=dtype)).to(device)
    opt = optim.create(optimizer, model, lr=0.05, **options)
    train = Batches(x, y, 20, shuffle=True, seed=2, device=device)
    return Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, callbacks=list(callbacks), out=out,
                   progress=False)


class CopyOfX:
    """The naive reference: after every step, each block's ‖x_{t+1} − x_t‖ from a float64 copy of x kept from the step
    before, and ‖g^i‖ of the flat gradient, both by a plain per-block loop."""

    def __init__(self):
        self.gradient_norms, self.step_norms, self.epoch_of_step = [], [], []

    def on_fit_start(self, trainer):
        self.previous = host(trainer.optimizer.flat.x).astype(np.float64)

    def on_step_end(self, trainer):
        opt = trainer.optimizer
        x, g = host(opt.flat.x).astype(np.float64), host(opt.flat.g).astype(np.float64)
        bounds = np.cumsum([0] + [size for _, size in opt.blocks])
        blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        self.gradient_norms.append([np.linalg.norm(g[b]) for b in blocks])
        self.step_norms.append([np.linalg.norm(x[b] - self.previous[b]) for b in blocks])
        self.epoch_of_step.append(len(trainer.history))
        self.previous = x

    def windows(self, every):
        """Window means as the recorder promises them: ``every`` steps, restarting with every epoch."""
        out, start = [], 0
        for t in range(1, len(self.step_norms) + 1):
            epoch_ends = t == len(self.step_norms) or self.epoch_of_step[t] != self.epoch_of_step[t - 1]
            if t - start == every or epoch_ends:
                window = slice(start, t)
                out.append((t, np.mean(self.gradient_norms[window], axis=0), np.mean(self.step_norms[window], axis=0)))
                start = t
        return out


@pytest.mark.parametrize("options", [{}, {"track_norms": False}], ids=["measured-by-the-chain", "measured-here"])
def test_records_equal_the_window_means_of_a_naive_reference(device, partition_path, options):
    recorder, reference = BlockStepRecorder(every=3), CopyOfX()
    make_trainer(device, [recorder, reference], dtype="float64", **options).fit()
    expected = reference.windows(3)
    assert [r["step"] for r in recorder.records] == [t for t, _, _ in expected] == [3, 6, 9, 10, 13, 16, 19, 20]
    assert [r["steps"] for r in recorder.records] == [3, 3, 3, 1] * 2
    assert [r["epoch"] for r in recorder.records] == pytest.approx([0.3, 0.6, 0.9, 1.0, 1.3, 1.6, 1.9, 2.0])
    for record, (t, gradient_norms, step_norms) in zip(recorder.records, expected):
        np.testing.assert_allclose(record["gradient_norms"], gradient_norms, rtol=1e-12, err_msg=f"step {t}")
        np.testing.assert_allclose(record["step_norms"], step_norms, rtol=1e-9, err_msg=f"step {t}")
    assert recorder.column("gradient_norms").shape == recorder.column("step_norms").shape == (8, 3)
    assert recorder.block_names == ["0", "2", "4"]


@given(every=st.integers(1, 7), steps_per_epoch=st.integers(1, 9), epochs=st.integers(1, 3),
       optimizer=st.sampled_from(["adamng", "sgdm", "adagrad"]))
def test_every_window_is_the_mean_of_its_steps_and_none_crosses_an_epoch(every, steps_per_epoch, epochs, optimizer):
    recorder, reference = BlockStepRecorder(every=every), CopyOfX()
    make_trainer("cpu", [recorder, reference], epochs=epochs, optimizer=optimizer, dtype="float64",
                 samples=20 * steps_per_epoch).fit()
    windows_per_epoch = -(-steps_per_epoch // every)
    assert len(recorder.records) == epochs * windows_per_epoch
    assert sum(r["steps"] for r in recorder.records) == epochs * steps_per_epoch
    for record, (t, gradient_norms, step_norms) in zip(recorder.records, reference.windows(every), strict=True):
        assert record["step"] == t
        assert record["epoch"] == pytest.approx(t / steps_per_epoch)   # epochs of equal length
        np.testing.assert_allclose(record["gradient_norms"], gradient_norms, rtol=1e-12)
        np.testing.assert_allclose(record["step_norms"], step_norms, rtol=1e-9)


def test_float32_steps_match_the_parameters_change(device):
    recorder, reference = BlockStepRecorder(every=5), CopyOfX()
    make_trainer(device, [recorder, reference], epochs=1).fit()
    for record, (_, _, step_norms) in zip(recorder.records, reference.windows(5)):
        np.testing.assert_allclose(record["step_norms"], step_norms, rtol=1e-4)


def test_recording_leaves_the_run_unchanged(device):
    plain, recorded = make_trainer(device), make_trainer(device, [BlockStepRecorder(every=4)])
    plain.fit(), recorded.fit()
    np.testing.assert_array_equal(host(plain.optimizer.flat.x), host(recorded.optimizer.flat.x))


def test_one_device_read_per_record(device, monkeypatch):
    reads = []
    real = recorders.asnumpy
    monkeypatch.setattr(recorders, "asnumpy", lambda a: reads.append(1) or real(a))
    recorder = BlockStepRecorder(every=4)
    make_trainer(device, [recorder]).fit()
    assert len(reads) == len(recorder.records) == 6   # steps 4, 8, 10 of each epoch


class HeldInScratch(UpdateTransform):
    """An update link that hands the update back in the partition's scratch vector (legal: it is free between
    calls), as a hand-written link might."""

    name = "held_in_scratch"

    def __call__(self, u, it):
        it.partition.scratch[...] = u
        return it.partition.scratch


@pytest.mark.parametrize("track_norms", [True, False])
def test_an_update_held_in_the_scratch_vector_is_measured_without_being_changed(device, track_norms):
    def trainer(callbacks):
        t = make_trainer(device, callbacks, track_norms=track_norms)
        t.optimizer.chain = optim.Chain(*t.optimizer.chain.links, HeldInScratch())
        return t

    recorder, reference = BlockStepRecorder(every=2), CopyOfX()
    plain, recorded = trainer([]), trainer([recorder, reference])
    plain.fit(), recorded.fit()
    np.testing.assert_array_equal(host(plain.optimizer.flat.x), host(recorded.optimizer.flat.x))
    for record, (_, _, step_norms) in zip(recorder.records, reference.windows(2)):
        np.testing.assert_allclose(record["step_norms"], step_norms, rtol=1e-4)


class OneStep:
    """The few attributes of a Trainer a recorder reads, for driving an optimizer by hand."""

    def __init__(self, optimizer):
        self.optimizer, self.history, self.train_batches, self.out = optimizer, [], [None], None


def test_vanishing_gradients_are_recorded_exactly_and_the_step_is_the_one_asked_for(device):
    """A float32 block whose gradient entries are ~1e-30: its ‖g^i‖ (squares ~1e-60 underflow in float32) and SGD's
    step lr·‖g^i‖ ~ 1e-31 (which rounds away when subtracted from x) are recorded as they are, not as 0."""
    layer = nn.Linear(3, 2).to(device)
    opt = optim.SGD(layer, lr=0.1)
    recorder, trainer = BlockStepRecorder(every=1), OneStep(opt)
    recorder.on_fit_start(trainer)
    gradient = np.array([3e-30, -4e-30, 1e-30, 2e-30, 0.0, 5e-30, -1e-30, 2e-30], dtype=np.float32)
    opt.flat.g[...] = mb.backend.to_device(gradient, device)
    opt.step()
    recorder.on_step_end(trainer)
    exact = np.linalg.norm(gradient.astype(np.float64))
    [record] = recorder.records
    assert record["gradient_norms"] == pytest.approx([exact], rel=1e-6)
    assert record["step_norms"] == pytest.approx([0.1 * exact], rel=1e-6)


def test_a_resumed_run_records_what_an_uninterrupted_one_did(device, tmp_path):
    straight = BlockStepRecorder(every=3)
    make_trainer(device, [straight], out=str(tmp_path / "a"), epochs=3).fit()
    make_trainer(device, [BlockStepRecorder(every=3)], out=str(tmp_path / "b"), epochs=1).fit()
    resumed = BlockStepRecorder(every=3)
    make_trainer(device, [resumed], out=str(tmp_path / "b"), epochs=3).fit(resume=True)
    assert resumed.records == straight.records
    on_disk = [json.loads(line) for line in (tmp_path / "b" / "block_steps.jsonl").read_text().splitlines()]
    assert on_disk == straight.records


def test_records_written_after_the_checkpoint_s_step_are_dropped_on_resume(device, tmp_path):
    """A run killed between writing its records and its checkpoint left records of an epoch it will run again."""
    make_trainer(device, [BlockStepRecorder(every=3)], out=str(tmp_path), epochs=1).fit()
    path = tmp_path / "block_steps.jsonl"
    lines = path.read_text().splitlines()
    later = [json.dumps({**json.loads(line), "step": json.loads(line)["step"] + STEPS_PER_EPOCH}) for line in lines]
    path.write_text("\n".join(lines + later) + "\n")
    resumed = BlockStepRecorder(every=3)
    make_trainer(device, [resumed], out=str(tmp_path), epochs=2).fit(resume=True)
    assert [r["step"] for r in resumed.records] == [3, 6, 9, 10, 13, 16, 19, 20]


@pytest.mark.parametrize("content", ["not json\n", '{"step": 3}\n', "[1, 2]\n"],
                         ids=["text", "a key missing", "a list"])
def test_a_record_file_of_something_else_is_refused_on_resume(device, tmp_path, content):
    make_trainer(device, [BlockStepRecorder(every=3)], out=str(tmp_path), epochs=1).fit()
    (tmp_path / "block_steps.jsonl").write_text(content)
    with pytest.raises(ValueError, match=r"block_steps.jsonl does not hold a BlockStepRecorder's records .*remove it"):
        make_trainer(device, [BlockStepRecorder(every=3)], out=str(tmp_path), epochs=2).fit(resume=True)


def test_no_file_without_a_filename(device, tmp_path):
    make_trainer(device, [BlockStepRecorder(every=3, filename=None)], out=str(tmp_path), epochs=1).fit()
    assert not (tmp_path / "block_steps.jsonl").exists()


@pytest.mark.parametrize("every", [0, -2, 1.5, True, "10", None])
def test_every_must_be_a_whole_number_of_steps(every):
    with pytest.raises(ValueError, match=r"BlockStepRecorder: every must be a whole number of steps >= 1, got"):
        BlockStepRecorder(every=every)


@pytest.mark.parametrize("filename", ["", "runs/steps.jsonl", 3])
def test_filename_must_name_a_file_in_the_run_s_folder(filename):
    with pytest.raises(ValueError, match="BlockStepRecorder: filename must be a file name within the run's folder"):
        BlockStepRecorder(filename=filename)


def test_one_recorder_records_one_optimizer(device):
    recorder = BlockStepRecorder(every=5)
    make_trainer(device, [recorder], epochs=1).fit()
    with pytest.raises(ValueError, match="already records another optimizer's run; create one recorder per Trainer"):
        make_trainer(device, [recorder], epochs=1).fit()


def test_close_stops_recording(device):
    recorder = BlockStepRecorder(every=5)
    trainer = make_trainer(device, [recorder], epochs=1)
    trainer.fit()
    recorder.close()
    assert recorder._observe not in trainer.optimizer.chain.observers
    assert "2 records of 3 blocks" in repr(recorder)
