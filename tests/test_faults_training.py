"""Fault table, training runs and the files they write: empty data, runs that all diverge, permissions, leftovers."""
import contextlib
import errno
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from fault_worker import build_trainer
from minibng import files, nn, optim, plot
from minibng.data import Batches, synthetic
from minibng.examples import mnist_mlp
from minibng.train import LOCK_NAME, Trainer, load_npz
from promise_table import registry
from support import real_data_root

SECTION = "Training runs and their files"
PROMISES, promise = registry()


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@promise("empty-data-set", "a data set of 0 samples given to `Batches`",
         "`ValueError`: the data set holds 0 samples (an empty file, or a limit of 0 samples?)")
def _empty_batches():
    x, y = synthetic.blobs(n=10, features=4, classes=2, seed=0)
    with pytest.raises(ValueError, match="holds 0 samples"):
        Batches(x[:0], y[:0], 4)


@promise("empty-training-batches", "a Trainer given training or evaluation batches that hold nothing (or claim "
         "a length and yield nothing)", "`ValueError` naming the set, before any epoch is recorded; no epoch "
         "“completes” with NaN metrics and no checkpoint is written")
def _empty_training_batches(tmp_path):
    x, y = synthetic.blobs(n=10, features=4, classes=2, seed=0)

    class Yielding:
        def __init__(self, length, batches):
            self.length, self.batches = length, batches

        def __len__(self):
            return self.length

        def __iter__(self):
            return iter(self.batches)

        def state(self):
            return {}

    def trainer(train, evaluate=None):
        model = nn.Sequential(nn.Linear(4, 2))
        return Trainer(model, nn.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.1), train, epochs=2,
                       evaluate=evaluate, out=str(tmp_path), progress=False)

    with pytest.raises(ValueError, match="train_batches holds no batches"):
        trainer(Yielding(0, []))
    with pytest.raises(ValueError, match=r"evaluate\['test'\] holds no batches"):
        trainer(Batches(x, y, 5), {"test": Yielding(0, [])})
    liar = trainer(Yielding(1, []))
    with pytest.raises(ValueError, match="epoch 1 got no batch from train_batches"):
        liar.fit()
    assert liar.history == [] and not (tmp_path / "checkpoint.npz").exists()


@promise("every-run-diverges", "an experiment in which every optimizer diverges in its first epoch",
         "the summary table is printed with every run marked diverged (!) and metrics.csv is written; no "
         "matplotlib traceback, no empty figure: no curves.png without a finished epoch, and gradnorms.png shows "
         "the steps taken before the divergence")
def _every_run_diverges(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflows that make the runs diverge
        mnist_mlp.main(["--depth", "3", "--optimizers", "sgd,adam", "--lr", "1e38", "--epochs", "1", "--limit",
                        "300", "--data-dir", str(real_data_root()), "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "final training/test objective" in out and out.count("—!") == 2
    assert "wrote metrics.csv, gradnorms.png in" in out
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [",".join(mnist_mlp.COLUMNS)]
    assert [p.name for p in tmp_path.glob("*.png")] == ["gradnorms.png"]


@promise("file-permissions", "results written under umask 022, or 027 for a group",
         "checkpoint, logs and figures get 0644, or 0640: what any new file gets (not mkstemp's 0600), so whoever "
         "may read the folder may read the results")
def _file_permissions(tmp_path):
    for mask, expected in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"umask{mask:03o}"
        with umask(mask):
            trainer = build_trainer(str(out), 1)
            trainer.fit()
            plot.curves([{"epoch": 1, "depth": 3, "optimizer": "adam", "train_loss": 1.0, "test_loss": 1.0}],
                        out / "curves.png")
        for name in ("checkpoint.npz", "metrics.csv", "metrics.jsonl", "curves.png"):
            assert mode(out / name) == expected, (name, oct(mode(out / name)))


@promise("leftover-temporary-file", "temporary files left in a folder by writes that were killed",
         "the next write into that folder removes those of this machine's processes that have exited, and keeps a "
         "live process's (a download in progress) and every one another machine wrote (a shared file system)")
def _leftover_temporary_file(tmp_path):
    host = files._HOST
    dead = tmp_path / f".metrics.csv.{host}~999999999-abc123.tmp"      # no such process: pid_max is at most 2**22
    live = tmp_path / f".blob.bin.{host}~{os.getpid()}-def456.tmp"
    elsewhere = tmp_path / f".blob.bin.{host}x~999999999-ghi789.tmp"   # another machine's write: its pid means nothing
    for path, content in ((dead, b"partial"), (live, b"in progress"), (elsewhere, b"remote")):
        path.write_bytes(content)
    with files.atomic_write(tmp_path / "metrics.csv", "w") as f:
        f.write("epoch\n")
    assert not dead.exists() and live.read_bytes() == b"in progress" and elsewhere.read_bytes() == b"remote"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, "metrics.csv"])


@promise("failed-write-keeps-file", "a write that fails half-way (an exception while writing a log)",
         "the file keeps its previous content and no temporary file is left")
def _failed_write_keeps_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk"):
        with files.atomic_write(path, "w") as f:
            f.write("new, half")
            raise RuntimeError("disk gone")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["metrics.csv"]


@promise("trainer-bad-epochs-or-out", "`Trainer(epochs=2.7)`, `Trainer(epochs='3')`, `Trainer(out=<a file>)`",
         "`TypeError` naming `epochs` (never 2 epochs of 2.7, never a comparison of text with 0), `ValueError` naming "
         "`out` and the file; nothing is trained or written")
def _trainer_bad_epochs_or_out(tmp_path):
    x, y = synthetic.blobs(n=10, features=4, classes=2, seed=0)
    model = nn.Sequential(nn.Linear(4, 2))

    def trainer(**options):
        return Trainer(model, nn.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.1), Batches(x, y, 5), progress=False,
                       **options)

    for epochs in (2.7, "3", True, None):
        with pytest.raises(TypeError, match=r"Trainer: epochs must be a whole number of epochs \(an int\)"):
            trainer(epochs=epochs)
    with pytest.raises(ValueError, match=r"Trainer: epochs must be >= 0, got -1"):
        trainer(epochs=-1)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for out in (notes, notes / "run"):
        with pytest.raises(ValueError, match=f"Trainer: out must be a folder, but {notes} is a file"):
            trainer(epochs=1, out=out)
    with pytest.raises(TypeError, match="Trainer: out must be a folder's path"):
        trainer(epochs=1, out=3)
    assert notes.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert len(trainer(epochs=np.int64(1)).fit()) == 1


def example(out, *extra):
    """A short MNIST experiment into ``out``."""
    return ["--depth", "2", "--optimizers", "sgd", "--epochs", "1", "--limit", "300", "--data-dir",
            str(real_data_root()), "--out", str(out), "--no-progress", *extra]


def refuse_writes_into(monkeypatch, folder, error, name=None):
    """Make every file written into ``folder`` (or only the file ``name`` there) fail with ``error``: as a read-only
    folder does (also for root, whom permissions do not stop) or a full disk."""
    create = files._create_temporary

    def failing(where, written):
        if Path(where) == Path(folder).resolve() and name in (None, written):
            raise error
        return create(where, written)

    monkeypatch.setattr(files, "_create_temporary", failing)


@promise("run-folder-read-only", "a run's folder that cannot be written into (read-only) when its epoch's files are due",
         "one line, `error: cannot write <the first of them>: Permission denied; make that folder writable, or give "
         "another --out` (exit status 1), never a traceback; what was written before is kept")
def _run_folder_read_only(tmp_path, monkeypatch, capsys):
    run = tmp_path / "depth2-sgd-seed0"
    refuse_writes_into(monkeypatch, run, PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(SystemExit) as info:
        mnist_mlp.main(example(tmp_path))
    # the first file due is gradnorms.png's records (block_steps.jsonl), written before the checkpoint
    assert str(info.value.code) == (f"error: cannot write {run / 'block_steps.jsonl'}: Permission denied; make that "
                                    "folder writable, or give another --out")
    assert (tmp_path / "experiment.json").exists() and not (tmp_path / LOCK_NAME).exists()


@promise("disk-full", "the disk fills up while a checkpoint is written (`ENOSPC`)",
         "one line naming the file: the disk is full, free space, then rerun the same command with --resume (exit "
         "status 1, no traceback); the previous checkpoint is intact and that command continues from it")
def _disk_full(tmp_path, monkeypatch):
    argv = example(tmp_path)
    mnist_mlp.main(argv)
    checkpoint = tmp_path / "depth2-sgd-seed0" / "checkpoint.npz"
    before = checkpoint.read_bytes()
    refuse_writes_into(monkeypatch, checkpoint.parent, OSError(errno.ENOSPC, "No space left on device"),
                       "checkpoint.npz")
    with pytest.raises(SystemExit) as info:
        mnist_mlp.main([*argv, "--epochs", "2", "--resume"])
    message = str(info.value.code)
    assert message.startswith(f"error: cannot write {checkpoint}: No space left on device; the disk is full")
    assert "rerun the same command with --resume" in message and checkpoint.read_bytes() == before
    monkeypatch.undo()
    mnist_mlp.main([*argv, "--epochs", "2", "--resume"])
    assert len(load_npz(checkpoint)["meta/history"]) == 2


@promise("lock-path-is-a-folder", "`--out` whose `.minibng.lock` is a folder (where the run lock's file belongs)",
         "one line naming it: a folder stands where minibng writes a file, move it away or give another --out (exit "
         "status 1), before any data is read; nothing in the folder changes")
def _lock_path_is_a_folder(tmp_path, monkeypatch):
    (tmp_path / LOCK_NAME).mkdir()
    monkeypatch.setattr(mnist_mlp.mnist, "load", lambda *args, **kwargs: pytest.fail("data read"))
    with pytest.raises(SystemExit) as info:
        mnist_mlp.main(example(tmp_path))
    assert str(info.value.code) == (f"error: cannot write {tmp_path / LOCK_NAME}: Is a directory; a folder stands "
                                    "where minibng writes a file: move it away, or give another --out")
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)


def test_the_umask_is_read_without_being_changed():
    with umask(0o027):
        assert files.current_umask() == 0o027
        assert files.current_umask() == 0o027
        assert os.umask(0o027) == 0o027
