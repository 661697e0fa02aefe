"""Fault table, checkpoints and resuming: damaged files, checkpoints of another run, and changed settings.

Every refusal is one CheckpointError that names the file and what to do, never advises unpickling, changes
nothing on disk, and leaves the resuming trainer's model as it was.
"""
import errno
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minibng as mb
from fault_worker import build_trainer
from minibng.examples import mnist_mlp, ptb_lstm, rt_cnn, settings
from minibng.examples import session
from minibng.train import (LOCK_NAME, ChangedSettingsError, CheckpointError, FewerEpochsError, FolderLockedError,
                           OtherWorldSizeError, SettingDifference, load_npz, random_streams, save_npz)
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


def mnist_experiment(folder, *extra):
    """A finished one-epoch MNIST experiment in ``folder``; returns its flags (without ``extra``)."""
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "1", "--limit", "300", "--data-dir",
            str(real_data_root()), "--out", str(folder), "--no-progress"]
    mnist_mlp.main(argv + list(extra))
    return argv


def every_file(folder):
    """Every file under ``folder`` and its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def assert_refused_usage(main, argv, capsys, *words):
    """``main(argv)`` is a usage error (exit status 2) whose message holds ``words``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("usage: ") and all(w in err for w in words), err


@promise("example-resume-changed-limit", "`python -m minibng.examples.mnist_mlp --resume` with another `--limit`",
         "usage error (exit status 2) naming `limit` with the folder's value and the new one, before any data is "
         "read; nothing in the folder changes (every flag that shapes a run is recorded)")
def _example_changed_limit(tmp_path, capsys):
    argv = mnist_experiment(tmp_path)
    before = every_file(tmp_path)
    assert_refused_usage(mnist_mlp.main, [*argv, "--limit", "400", "--resume"], capsys,
                         "holds an experiment with other settings (limit: 300 there, 400 now)", "another --out")
    assert every_file(tmp_path) == before


@promise("example-resume-other-threads", "`python -m minibng.examples.mnist_mlp --resume` with another "
         "`--threads` and more `--epochs`", "the runs continue: the thread count, like the epochs, may change on "
         "resume (it changes only the last digits); the checkpoint's config records the new values")
def _example_other_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "usable_cores", lambda: 4)   # 2 threads, even where the machine has 1 core
    common = ["--depth", "3", "--optimizers", "adamng", "--data-dir", str(real_data_root()), "--limit", "300",
              "--out", str(tmp_path), "--no-progress"]
    mnist_mlp.main(common + ["--epochs", "1", "--threads", "1"])
    mnist_mlp.main(common + ["--epochs", "2", "--threads", "2", "--resume"])
    config = load_npz(tmp_path / "depth3-adamng-seed0" / "checkpoint.npz")["meta/config"]
    assert (config["epochs"], config["threads"]) == (2, 2)
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3


@promise("resume-nothing-to-resume", "`--resume` into a folder that does not exist (a typo), or holds no checkpoint",
         "usage error (exit status 2) saying there is nothing to resume and to leave out --resume to start; no "
         "folder is made, nothing is trained")
def _nothing_to_resume(tmp_path, capsys):
    typo = tmp_path / "runs" / "mnits_mlp"
    assert_refused_usage(mnist_mlp.main, ["--resume", "--out", str(typo)], capsys, "does not exist, so there is "
                         "nothing to resume", "leave out --resume")
    assert not (tmp_path / "runs").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused_usage(mnist_mlp.main, ["--resume", "--out", str(empty)], capsys, "holds no checkpoint")
    assert list(empty.iterdir()) == []


@promise("resume-other-settings", "`--resume` with another `--depth` (or `--dtype`, `--optimizers` …) than the "
         "experiment in `--out`", "usage error (exit status 2) naming each setting that differs with both values, "
         "before any data is read; the folder's checkpoints, metrics.csv and figures are untouched")
def _other_settings(tmp_path, capsys):
    argv = mnist_experiment(tmp_path)
    before = every_file(tmp_path)
    assert_refused_usage(mnist_mlp.main, [*argv, "--depth", "4", "--resume"], capsys, "depths: [3] there, [4] now")
    assert_refused_usage(mnist_mlp.main, [*argv, "--dtype", "float64", "--resume"], capsys,
                         'dtype: "float32" there, "float64" now')
    assert every_file(tmp_path) == before


@promise("resume-other-example", "`ptb_lstm --resume --out <an mnist_mlp folder>` (a folder another script wrote)",
         "usage error (exit status 2) naming the script that wrote it; nothing in it is touched")
def _other_example(tmp_path, capsys):
    mnist_experiment(tmp_path)
    before = every_file(tmp_path)
    for script in (ptb_lstm, rt_cnn):
        assert_refused_usage(script.main, ["--resume", "--out", str(tmp_path), "--data-dir", str(tmp_path)], capsys,
                             "holds an experiment of mnist_mlp, not of")
    assert every_file(tmp_path) == before


@promise("out-is-a-run-folder", "`--out` naming one run's own folder (`runs/mnist_mlp/depth18-adam-seed0`)",
         "usage error (exit status 2) naming the experiment's folder to give instead; the run's files are untouched")
def _out_is_a_run_folder(tmp_path, capsys):
    mnist_experiment(tmp_path)
    run = tmp_path / "depth3-adamng-seed0"
    before = every_file(run)
    for extra in ([], ["--resume"]):
        assert_refused_usage(mnist_mlp.main, ["--out", str(run), *extra], capsys, "is the folder of one run",
                             f"give the experiment's folder, {tmp_path}")
    assert every_file(run) == before


@promise("out-not-an-experiment", "`--out` naming an existing folder that holds files but no experiment.json: a folder "
         "of other files (a metrics.csv of one's own), or one an earlier minibng wrote (run folders with checkpoints, "
         "from before the record existed), with or without `--resume`", "usage error (exit status 2) naming the "
         "folder: written by an earlier minibng, or not an experiment's folder; such runs cannot be resumed, give an "
         "empty or new --out; nothing in it is touched")
def _out_not_an_experiment(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.csv").write_text("my own measurements\n")
    earlier = tmp_path / "earlier"
    mnist_experiment(earlier)
    (earlier / "experiment.json").unlink()                # as minibng wrote folders before the record
    for folder, shown in ((mine, "metrics.csv"), (earlier, "depth3-adamng-seed0")):
        before = every_file(folder)
        for extra in ([], ["--resume"]):
            assert_refused_usage(mnist_mlp.main, ["--out", str(folder), *extra], capsys, f"--out {folder} holds files",
                                 shown, "written by an earlier minibng, or is not an experiment's folder",
                                 "cannot be resumed", "give an empty or new folder as --out")
        assert every_file(folder) == before


@promise("checkpoint-dangling-symlink", "a run's checkpoint.npz that is a symbolic link to a file that is gone, "
         "resumed (`fit(resume=True)`, `--resume`)", "`CheckpointError` saying the link points nowhere and what to do "
         "(the script: `error: …`, exit status 1); never a fresh start over it")
def _dangling_symlink(tmp_path):
    gone = tmp_path / "elsewhere.npz"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").symlink_to(gone)
    assert_refused(tmp_path / "run", "is a symbolic link to .*elsewhere.npz, which does not exist")
    argv = mnist_experiment(tmp_path / "experiment")
    link = tmp_path / "experiment" / "depth3-adamng-seed0" / "checkpoint.npz"
    link.unlink()
    link.symlink_to(gone)
    with pytest.raises(SystemExit, match=r"error: checkpoint .* is a symbolic link to .*, which does not exist"):
        mnist_mlp.main([*argv, "--resume"])
    assert link.is_symlink() and not gone.exists()


@promise("checkpoint-tampered-stream", "a checkpoint whose `rng/stream` entry was tampered with (one number instead "
         "of a seed and a counter, or a negative one)", "`CheckpointError` naming the entry, before anything is "
         "restored (never a raw IndexError, never a half-restored model)")
def _tampered_stream(tmp_path):
    path = finished_run(tmp_path)
    for tampered in (np.array([5]), np.array([0, -3]), np.array([0.5, 1.0])):
        rewrite(path, **{"rng/stream/2": tampered})
        assert_refused(tmp_path, r"rng/stream/2 is not a random stream's state")


@promise("restore-all-or-nothing", "a restore stopped half-way by any exception (an IndexError from a data order, "
         "Ctrl-C), after the model and the optimizer were restored", "the model, the optimizer, the random streams "
         "and the data order are put back as they were; an error is a `CheckpointError` naming the file, Ctrl-C goes "
         "on as Ctrl-C")
def _restore_all_or_nothing(tmp_path, monkeypatch):
    finished_run(tmp_path)
    for interruption, expected in ((IndexError("list index out of range"), CheckpointError),
                                   (KeyboardInterrupt(), KeyboardInterrupt)):
        trainer = build_trainer(str(tmp_path), 2)
        fresh, optimizer_state = weights(trainer), trainer.optimizer.state_dict()
        streams = {name: s.state() for name, s in random_streams(trainer.model).items()}

        def stop_once(state, interruption=interruption, restore=trainer.train_batches.set_state, calls=[]):
            calls.append(state)
            if len(calls) == 1:   # the restore's call; the undo's goes through
                raise interruption
            restore(state)

        monkeypatch.setattr(trainer.train_batches, "set_state", stop_once)
        with pytest.raises(expected):
            trainer.fit(resume=True)
        for w, v in zip(weights(trainer), fresh):
            np.testing.assert_array_equal(w, v)
        for key, value in trainer.optimizer.state_dict().items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(optimizer_state[key]), err_msg=key)
        assert {name: s.state() for name, s in random_streams(trainer.model).items()} == streams


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)


def test_a_checkpoint_that_fits_still_resumes_after_these_checks(tmp_path):
    """The checks refuse only what is wrong: an untouched checkpoint resumes, and its trainer reports done."""
    path = finished_run(tmp_path)
    assert len(build_trainer(str(tmp_path), 2).fit(resume=True)) == 2 and os.path.exists(path)


def test_the_scripts_turn_the_librarys_refusals_into_advice_about_their_flags():
    """The library's errors speak of settings and carry their data; only the scripts speak of flags."""
    path = "runs/x/depth3-adam-seed0/checkpoint.npz"
    changed = ChangedSettingsError(path, [SettingDifference("lr", 0.1, 0.2)], ("epochs", "threads"))
    assert "rerun with the flags that started them" in session.advice(changed)
    assert "resume with mpiexec -n 2" in session.advice(OtherWorldSizeError(path, 2, 1))
    assert "pass --epochs 5 or more" in session.advice(FewerEpochsError(path, 5, 3))
    assert "give another --out" in session.advice(FolderLockedError("runs/x", "pid 1 on host"))
    full = session.advice(OSError(errno.ENOSPC, "No space left on device", path))
    assert full.startswith(f"error: cannot write {path}: No space left on device") and "--resume" in full
    assert "make that folder writable" in session.advice(PermissionError(errno.EACCES, "Permission denied", path))
    assert all("--" not in str(e) for e in (changed, OtherWorldSizeError(path, 2, 1), FewerEpochsError(path, 5, 3)))
