"""Fault table, interrupted and concurrent runs: kill -9 at the worst moments, and two runs into one folder.

Each interrupted run is tests/fault_worker.py in a subprocess (bounded by a timeout); the reference is the same run
without interruption in this process.
"""
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minibng as mb
from fault_worker import build_trainer
from minibng.examples import mnist_mlp
from minibng.train import LOCK_NAME, FolderLockedError, folder_lock, load_npz, lock
from promise_table import registry
from support import metrics_rows, real_data_root

SECTION = "Interrupted and concurrent runs"
PROMISES, promise = registry()
WORKER = Path(__file__).with_name("fault_worker.py")
KILLED = -signal.SIGKILL


def worker(*args, timeout=120):
    return subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def straight_run(folder, epochs=3):
    trainer = build_trainer(str(folder), epochs)
    trainer.fit()
    return trainer


def log_rows(folder):
    """metrics.csv and metrics.jsonl of a run, without the wall-clock ``seconds``."""
    with open(Path(folder) / "metrics.csv") as f:
        table = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    lines = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return table, [{k: v for k, v in line.items() if k != "seconds"} for line in lines]


def assert_same_run(run, reference):
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert strip(run.history) == strip(reference.history)
    for (name, p), (_, q) in zip(run.model.named_parameters(), reference.model.named_parameters()):
        np.testing.assert_array_equal(mb.backend.asnumpy(p.data), mb.backend.asnumpy(q.data), err_msg=name)
    assert log_rows(run.out) == log_rows(reference.out)


def epochs_in(folder):
    return len(load_npz(Path(folder) / "checkpoint.npz")["meta/history"])


def wait_for(path, seconds=60):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.02)


@promise("kill-mid-epoch", "`kill -9` of a training process in the middle of an epoch",
         "`fit(resume=True)` continues from the last checkpoint and ends bit-identical to an uninterrupted run; "
         "the folder lock died with the killed process")
def _kill_mid_epoch(tmp_path):
    reference = straight_run(tmp_path / "reference")
    killed = worker(tmp_path / "run", 3, "--kill-at-step", 2 * len(reference.train_batches) + 3)
    assert killed.returncode == KILLED, killed.stderr
    assert epochs_in(tmp_path / "run") == 2
    resumed = build_trainer(str(tmp_path / "run"), 3)
    resumed.fit(resume=True)
    assert_same_run(resumed, reference)


@promise("kill-mid-checkpoint-write", "`kill -9` while a checkpoint is written (its temporary file complete, "
         "not yet renamed)", "the previous checkpoint is intact; resuming ends bit-identical to an uninterrupted "
         "run, and the next write into the folder removes the killed write's temporary file")
def _kill_mid_checkpoint_write(tmp_path):
    reference = straight_run(tmp_path / "reference")
    killed = worker(tmp_path / "run", 3, "--kill-at-checkpoint", 2)
    assert killed.returncode == KILLED, killed.stderr
    assert epochs_in(tmp_path / "run") == 1
    leftovers = list((tmp_path / "run").glob(".checkpoint.npz.*.tmp"))
    assert len(leftovers) == 1
    resumed = build_trainer(str(tmp_path / "run"), 3)
    resumed.fit(resume=True)
    assert_same_run(resumed, reference)
    assert not leftovers[0].exists()


@promise("kill-before-logs", "`kill -9` after the last epoch's checkpoint was renamed into place, before its "
         "logs were written", "resuming finds the run done and rebuilds metrics.csv and metrics.jsonl from the "
         "checkpoint's history: no epoch is missing from them")
def _kill_before_logs(tmp_path):
    reference = straight_run(tmp_path / "reference")
    killed = worker(tmp_path / "run", 3, "--kill-before-logs", 3)
    assert killed.returncode == KILLED, killed.stderr
    assert epochs_in(tmp_path / "run") == 3
    assert len(log_rows(tmp_path / "run")[0]) == 2          # the logs are one epoch short
    resumed = build_trainer(str(tmp_path / "run"), 3)
    resumed.fit(resume=True)
    assert_same_run(resumed, reference)


@promise("two-runs-one-folder", "a second training run started into the folder another run is writing",
         "`FolderLockedError` naming the folder and the other process, before it writes anything; the first run "
         "finishes with its checkpoint and logs intact")
def _two_runs_one_folder(tmp_path):
    go = tmp_path / "go"
    first = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "run"), "2", "--hold", str(go)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(f"{go}.started")
        second = worker(tmp_path / "run", 2)
        assert second.returncode == 1
        assert "FolderLockedError" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "is in use by another run" in second.stderr and str(tmp_path / "run") in second.stderr
    finally:
        go.touch()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    reference = straight_run(tmp_path / "reference", epochs=2)
    assert epochs_in(tmp_path / "run") == 2
    assert log_rows(tmp_path / "run") == log_rows(tmp_path / "reference") and reference.history


@promise("example-into-busy-folder", "an experiment script (`python -m minibng.examples.…`) started with the "
         "`--out` of an experiment that is running", "exits at once with `error: … is in use by another run`, "
         "before loading data; nothing in the folder is touched")
def _example_into_busy_folder(tmp_path):
    go, out = tmp_path / "go", tmp_path / "experiment"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        "from minibng.train import folder_lock\n"
        "with folder_lock(sys.argv[1]):\n"
        "    open(sys.argv[2] + '.started', 'w').close()\n"
        "    deadline = time.monotonic() + 60\n"
        "    while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"), str(out), str(go)])
    (tmp_path / "no-data").mkdir()   # a data folder that holds nothing: the script must stop before it looks
    try:
        wait_for(f"{go}.started")
        before = sorted(p.name for p in out.iterdir())
        with pytest.raises(SystemExit, match=r"(?s)error: .*experiment is in use by another run.*another --out"):
            mnist_mlp.main(["--out", str(out), "--data-dir", str(tmp_path / "no-data"), "--no-progress"])
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        go.touch()
        holder.wait(timeout=60)


@promise("example-ctrl-c", "Ctrl-C (SIGINT) while an experiment script trains",
         "exit status 130 without a traceback, naming the last checkpoint and the exact command that continues "
         "(the same flags and `--resume`); the figures of the finished epochs are there; that command finishes the "
         "experiment, and its table equals an uninterrupted run's")
def _example_ctrl_c(tmp_path):
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "6", "--limit", "2000", "--data-dir",
            str(real_data_root()), "--out", str(tmp_path / "run"), "--no-progress"]
    script = subprocess.Popen([sys.executable, "-m", "minibng.examples.mnist_mlp", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in script.stdout:   # the run is interrupted after its second epoch's line
            if "epoch 2/6" in line:
                script.send_signal(signal.SIGINT)
                break
        _, err = script.communicate(timeout=120)
    finally:
        script.kill()
    assert script.returncode == 130 and "Traceback" not in err, err
    assert (tmp_path / "run" / "curves.png").exists() and (tmp_path / "run" / "gradnorms.png").exists()
    assert not list((tmp_path / "run").rglob(LOCK_NAME))
    checkpoint = tmp_path / "run" / "depth3-adamng-seed0" / "checkpoint.npz"
    assert f"its last checkpoint is {checkpoint} (after epoch {epochs_in(checkpoint.parent)})" in err
    command = err.split("To continue: ")[1].strip()
    assert shlex.split(command) == ["python", "-m", "minibng.examples.mnist_mlp", *argv, "--resume"]
    mnist_mlp.main(shlex.split(command)[3:])
    mnist_mlp.main([*argv[:-3], "--out", str(tmp_path / "straight"), "--no-progress"])
    resumed = metrics_rows(tmp_path / "run" / "metrics.csv")
    assert resumed == metrics_rows(tmp_path / "straight" / "metrics.csv") and len(resumed) == 7


@promise("lock-file-removed", "the run lock's file, `.minibng.lock`, once a run or an experiment ends (finished, "
         "refused, interrupted by an error or Ctrl-C)", "it is gone: the holder removes it as it lets go (only a run "
         "killed outright leaves it, and the next run into the folder takes it and removes it)")
def _lock_file_removed(tmp_path):
    straight_run(tmp_path / "run", epochs=1)
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    argv = ["--depth", "2", "--optimizers", "sgd,adam", "--epochs", "1", "--limit", "300", "--data-dir",
            str(real_data_root()), "--out", str(tmp_path / "experiment"), "--no-progress"]
    mnist_mlp.main(argv)
    with pytest.raises(SystemExit):
        mnist_mlp.main([*argv, "--resume", "--epochs", "2", "--lr", "0.5"])   # refused: other settings
    assert not list((tmp_path / "experiment").rglob(LOCK_NAME))
    killed = worker(tmp_path / "killed", 3, "--kill-at-step", 3)
    assert killed.returncode == KILLED and (tmp_path / "killed" / LOCK_NAME).exists()
    build_trainer(str(tmp_path / "killed"), 1).fit()
    assert not (tmp_path / "killed" / LOCK_NAME).exists()


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)


def test_a_lock_file_its_holder_removed_is_never_held(tmp_path):
    """Taking the lock checks that the file it locked is still the one at the path: a process that opened the lock's
    file just before its holder removed it locks a file nobody else sees, and must start over (else two processes
    would each hold "the" lock)."""
    with folder_lock(tmp_path) as path:
        opened_too_early = os.open(path, os.O_RDWR)
    try:
        assert not os.path.exists(path)
        assert lock._try_lock(opened_too_early) and not lock._still_at(opened_too_early, path)
        with folder_lock(tmp_path):
            with pytest.raises(FolderLockedError, match="this process"):
                with folder_lock(tmp_path):
                    pass
    finally:
        os.close(opened_too_early)
    assert list(tmp_path.iterdir()) == []
