"""Fault table, checkpoints and resuming: damaged files, checkpoints of another run, and changed settings.

Every refusal is one CheckpointError that names the file and what to do, never advises unpickling, changes
nothing on disk, and leaves the resuming trainer's model as it was.
"""
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minibng as mb
from fault_worker import build_trainer
from minibng.examples import mnist_mlp
from minibng.train import (LOCK_NAME, ChangedSettingsError, CheckpointError, FewerEpochsError, SettingDifference,
                           load_npz, random_streams, save_npz)
from promise_table import registry
from support import real_data_root

SECTION = "Checkpoints and resuming"
PROMISES, promise = registry()


def finished_run(folder, epochs=2, config=None):
    build_trainer(str(folder), epochs, config).fit()
    return Path(folder) / "checkpoint.npz"


def weights(trainer):
    return [mb.backend.asnumpy(p.data).copy() for p in trainer.model.parameters()]


def files(folder):
    """Every file of a run folder and its bytes (but the lock's, which names its latest holder)."""
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file() and p.name != LOCK_NAME}


def assert_refused(folder, match, epochs=2, config=None):
    """Resuming from ``folder`` raises a CheckpointError matching ``match`` that names the checkpoint (in its message
    and its ``path``) and no command-line flag; nothing on disk changes and the trainer keeps its fresh weights.
    Returns the error."""
    before = files(folder)
    trainer = build_trainer(str(folder), epochs, config)
    fresh = weights(trainer)
    with pytest.raises(CheckpointError, match=match) as info:
        trainer.fit(resume=True)
    message = str(info.value)
    assert str(Path(folder) / "checkpoint.npz") in message and info.value.path == str(Path(folder) / "checkpoint.npz")
    assert "allow_pickle" not in message and "pickle.load" not in message      # never advice to unpickle
    assert " --" not in message and "(--" not in message                         # settings, not a script's flags
    assert files(folder) == before and trainer.history == []
    for w, v in zip(weights(trainer), fresh):
        np.testing.assert_array_equal(w, v)
    return info.value


def rewrite(path, **changes):
    arrays = load_npz(path)
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    save_npz(path, arrays)


@promise("checkpoint-truncated", "a checkpoint cut short (disk full, copied while written)",
         "`CheckpointError` naming the file and saying to delete it or resume from another folder")
def _truncated(tmp_path):
    path = finished_run(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "delete" in str(assert_refused(tmp_path, "damaged or not a minibng checkpoint"))


@promise("checkpoint-random-bytes", "a checkpoint.npz holding random bytes",
         "`CheckpointError` naming the file; numpy's advice to load it with pickle is never passed on")
def _random_bytes(tmp_path):
    path = finished_run(tmp_path)
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_refused(tmp_path, "damaged or not a minibng checkpoint")


@promise("checkpoint-empty", "an empty checkpoint.npz (0 bytes)", "`CheckpointError` naming the file")
def _empty(tmp_path):
    finished_run(tmp_path).write_bytes(b"")
    assert_refused(tmp_path, "damaged or not a minibng checkpoint")


@promise("checkpoint-bit-flip", "a checkpoint with one corrupted byte inside an array",
         "`CheckpointError` naming the file (the zip checksum catches it)")
def _bit_flip(tmp_path):
    path = finished_run(tmp_path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model/0.weight.npy")
    raw[info.header_offset + 30 + len(info.filename) + info.file_size // 2] ^= 0xFF   # inside the member's data
    path.write_bytes(bytes(raw))
    assert_refused(tmp_path, "damaged or not a minibng checkpoint")


@promise("checkpoint-npy", "a single array saved with `np.save` where the checkpoint should be",
         "`CheckpointError`: a single array (.npy), not a checkpoint")
def _npy(tmp_path):
    path = finished_run(tmp_path)
    with open(path, "wb") as f:
        np.save(f, np.arange(3))
    assert_refused(tmp_path, r"single array \(\.npy\)")


@promise("checkpoint-without-history", "an .npz without `meta/history` (not written by a Trainer)",
         "`CheckpointError`: the file lacks meta/history")
def _without_history(tmp_path):
    rewrite(finished_run(tmp_path), **{"meta/history": None})
    assert_refused(tmp_path, "lacks meta/history")


@promise("checkpoint-negative-step", "a checkpoint whose optimizer step count is −1",
         "`CheckpointError` at load, before the step count reaches a bias correction (no ZeroDivisionError)")
def _negative_step(tmp_path):
    rewrite(finished_run(tmp_path), **{"optim/step": np.array(-1)})
    assert_refused(tmp_path, "step count -1 is not a count")


@promise("checkpoint-of-another-model", "resuming a model from the checkpoint of a wider one",
         "`CheckpointError` naming the first entry that differs; the model keeps its weights (nothing is half "
         "loaded)")
def _another_model(tmp_path):
    path = finished_run(tmp_path, config={"hidden": 20})
    rewrite(path, **{"meta/config": {**load_npz(path)["meta/config"], "hidden": 16}})  # only the model differs
    assert_refused(tmp_path, r"does not fit this run .*'0\.weight': expected shape \(8, 16\), got \(8, 20\)")


@promise("refused-resume-of-a-diverged-run", "a run whose optimizer holds NaN (it diverged) resuming from a "
         "checkpoint that does not fit it", "`CheckpointError` naming the file, not the NaN; the model, the optimizer "
         "(its NaN included), the random streams and the data order are as they were")
def _diverged_then_refused(tmp_path):
    path = finished_run(tmp_path, config={"hidden": 20})
    rewrite(path, **{"meta/config": {**load_npz(path)["meta/config"], "hidden": 16}})
    trainer = build_trainer(str(tmp_path), 2, {"hidden": 16})
    opt = trainer.optimizer
    opt.rule.state["exp_avg"][:3] = np.nan                       # what a diverged run leaves behind
    opt.step_count, opt.lr = 7, 0.25
    streams = {name: s.state() for name, s in random_streams(trainer.model).items()}
    before = [np.array(b, copy=True) for b in opt.rule.state.values()], weights(trainer), trainer.train_batches.state()
    with pytest.raises(CheckpointError, match="does not fit this run"):
        trainer.fit(resume=True)
    for saved, now in zip(before[0], opt.rule.state.values()):
        np.testing.assert_array_equal(now, saved)                # NaN compares equal in assert_array_equal
    for w, v in zip(weights(trainer), before[1]):
        np.testing.assert_array_equal(w, v)
    assert (opt.step_count, opt.lr) == (7, 0.25) and trainer.train_batches.state() == before[2]
    assert {name: s.state() for name, s in random_streams(trainer.model).items()} == streams


@promise("resume-changed-settings", "`--resume` with another `--lr`, `--seed` or `--batch-size` than the "
         "checkpoint's", "`CheckpointError` listing every difference (checkpoint's value, new value); only "
         "`epochs` and `threads` may change on resume, so the saved config never lies")
def _changed_settings(tmp_path):
    finished_run(tmp_path)
    error = assert_refused(tmp_path, "written with other settings", config={"lr": 0.01, "seed": 1,
                                                                           "batch_size": 32})
    message = str(error)
    assert "lr: 0.02 in the checkpoint, 0.01 now" in message and "seed: 0 in the checkpoint, 1 now" in message
    assert "batch_size" not in message and "Only epochs and threads may change" in message
    assert isinstance(error, ChangedSettingsError) and error.changeable == ("epochs", "threads")
    assert error.differences == [SettingDifference("lr", 0.02, 0.01), SettingDifference("seed", 0, 1)]


@promise("resume-more-epochs", "`--resume` with more `--epochs`", "training continues to the new count; the "
         "saved config records it")
def _more_epochs(tmp_path):
    path = finished_run(tmp_path, epochs=2)
    trainer = build_trainer(str(tmp_path), 3)
    assert len(trainer.fit(resume=True)) == 3
    assert load_npz(path)["meta/config"]["epochs"] == 3


@promise("resume-fewer-epochs", "a checkpoint holding more finished epochs than the run asks for",
         "`CheckpointError` saying how many epochs the checkpoint holds; no silent 0-step epochs")
def _fewer_epochs(tmp_path):
    finished_run(tmp_path, epochs=2)
    error = assert_refused(tmp_path, "holds 2 finished epochs, more than the 1 this run asks for", epochs=1)
    assert isinstance(error, FewerEpochsError) and (error.finished_epochs, error.epochs) == (2, 1)


@promise("resume-position-past-epoch", "a checkpoint whose data-order position lies past the end of an epoch "
         "(saved for another batch size)", "`CheckpointError` naming the position and the epoch's length; no "
         "0-step epoch with NaN metrics")
def _position_past_epoch(tmp_path):
    rewrite(finished_run(tmp_path), **{"rng/batches/batch": np.array(10)})
    assert_refused(tmp_path, r"position \(epoch 2, batch 10\) lies outside an epoch of 10 batches")


@promise("example-resume-changed-limit", "`python -m minibng.examples.mnist_mlp --resume` with another `--limit`",
         "exits with `error: cannot resume …` naming `limit` (every flag that shapes a run is recorded)")
def _example_changed_limit(tmp_path):
    common = ["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--data-dir", str(real_data_root()),
              "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(common + ["--limit", "300"])
    before = files(tmp_path / "depth3-adamng-seed0")
    with pytest.raises(SystemExit, match=r"(?s)error: cannot resume .*limit: 300 in the checkpoint, 400 now.*"
                                         r"rerun with the flags that started them.*another --out"):
        mnist_mlp.main(common + ["--limit", "400", "--resume"])
    assert files(tmp_path / "depth3-adamng-seed0") == before


@promise("example-resume-other-threads", "`python -m minibng.examples.mnist_mlp --resume` with another "
         "`--threads` and more `--epochs`", "the runs continue: the thread count, like the epochs, may change on "
         "resume (it changes only the last digits); the checkpoint's config records the new values")
def _example_other_threads(tmp_path):
    common = ["--depth", "3", "--optimizers", "adamng", "--data-dir", str(real_data_root()), "--limit", "300",
              "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(common + ["--epochs", "1", "--threads", "1"])
    mnist_mlp.main(common + ["--epochs", "2", "--threads", "2", "--resume"])
    config = load_npz(tmp_path / "depth3-adamng-seed0" / "checkpoint.npz")["meta/config"]
    assert (config["epochs"], config["threads"]) == (2, 2)
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)


def test_a_checkpoint_that_fits_still_resumes_after_these_checks(tmp_path):
    """The checks refuse only what is wrong: an untouched checkpoint resumes, and its trainer reports done."""
    path = finished_run(tmp_path)
    assert len(build_trainer(str(tmp_path), 2).fit(resume=True)) == 2 and os.path.exists(path)
