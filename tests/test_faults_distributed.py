"""Fault table, data-parallel runs: a rank that raises, hangs or diverges alone ends the job cleanly, within
seconds and never in a hang; a checkpoint resumes only at the world size that wrote it.

The MPI cases run ``mpiexec -n 2`` (tests/mpi_worker.py) and skip, naming the install command, without MPI.
"Never a hang" is bounded by ``support.mpiexec``'s timeout (90 s; the job's whole process group is killed past
it, and the case fails), far below MINIBNG_MPI_TIMEOUT's default of 600 s: no wall-clock figure is asserted.
"""
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fault_worker import build_trainer
from minibng.examples import mnist_mlp, settings
from minibng.train import OtherWorldSizeError, load_npz, save_npz
from promise_table import registry
from support import mpi_environment, mpiexec, mpiexec_or_skip, real_data_root

SECTION = "Data-parallel runs (MPI)"
PROMISES, promise = registry()
WORKER = Path(__file__).resolve().parent / "mpi_worker.py"


@promise("rank-raises", "one rank of `mpiexec -n 2` raises an exception in the middle of an epoch",
         "every rank stops within seconds (`MPI_Abort`), never a hang: stderr names the rank and its error, and "
         "mpiexec exits with a non-zero status")
def _rank_raises():
    status, out, err, seconds = mpiexec([[WORKER, "fail", 5]] * 2)
    assert status != 0 and "done" not in out, (status, seconds, out, err)
    assert "minibng: rank 1 of 2: RuntimeError: rank 1 failed on purpose" in err and "stopping all 2 ranks" in err, err


@promise("rank-hangs", "one rank stops answering (it hangs in its own code) while the others wait in a collective",
         "the waiting ranks give up after `MINIBNG_MPI_TIMEOUT` seconds (default 600) and stop every rank, saying "
         "what they waited for")
def _rank_hangs():
    status, out, err, seconds = mpiexec([[WORKER, "hang", 5]] * 2, env={"MINIBNG_MPI_TIMEOUT": "2"})
    assert status != 0, (status, seconds, out, err)
    assert "minibng: rank 0 of 2: waited 2 s for the gradient: another rank stopped answering" in err, err


@promise("rank-exits-with-error", "an experiment script under `mpiexec -n 2` whose rank 1 alone stops with an error "
         "message (here a usage error: the ranks were given different flags; or a data set its node lacks)",
         "every rank stops at once (`MPI_Abort`): stderr names rank 1 and its message; no rank waits for the timeout")
def _rank_exits_with_error(tmp_path):
    flags = ["-m", "minibng.examples.mnist_mlp", "--depth", "2", "--epochs"]
    status, out, err, seconds = mpiexec([(tmp_path, [*flags, "1"]), (tmp_path, [*flags, "0"])])
    assert status != 0, (status, seconds, out, err)
    assert "rank 1: --epochs must be >= 1, got 0" in err and err.count("stopping all 2 ranks") == 1, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == [], err


@promise("ranks-different-settings", "`mpiexec -n 1 … --lr 0.001 : -n 1 … --lr 0.01` (or another `--seeds` or "
         "`--limit` on one rank)", "every rank stops before any data is read or folder made, with one message naming "
         "each setting that differs and its value on each rank (the ranks compare a digest of their settings, data "
         "sizes included, in one collective); never two inconsistent halves trained, never a run reported diverged")
def _ranks_different_settings(tmp_path):
    flags = ["-m", "minibng.examples.mnist_mlp", "--depth", "2", "--epochs", "1", "--data-dir", str(real_data_root()),
             "--no-progress", "--out", "run"]
    status, out, err, seconds = mpiexec([(tmp_path, [*flags, "--lr", "0.001", "--limit", "300"]),
                                         (tmp_path, [*flags, "--lr", "0.01", "--limit", "400", "--seeds", "1"])])
    assert status != 0 and "epoch 1/1" not in out, (status, seconds, out, err)
    assert ("the ranks hold different settings (limit: 300 on rank 0, 400 on rank 1; lr: 0.001 on rank 0, 0.01 on "
            "rank 1; seeds: [0] on rank 0, [1] on rank 1)") in err and err.count("stopping all 2 ranks") == 1, err
    assert list(tmp_path.iterdir()) == []


@promise("ranks-resume-or-device-differ", "`mpiexec -n 1 … --resume : -n 1 …` (one rank resumes, the other starts "
         "afresh), or `--device cpu` on one rank and `--device gpu` on another",
         "every rank stops before any data is read, with one message naming `resume` (or `device`, compared as cpu or "
         "gpu: each rank's GPU index is its own) and its value on each rank; never a raw MPI error from a collective "
         "one rank calls and the other does not; the folder's checkpoints are untouched")
def _ranks_resume_or_device_differ(tmp_path):
    flags = ["--depth", "2", "--optimizers", "adam", "--epochs", "1", "--limit", "300", "--data-dir",
             str(real_data_root()), "--no-progress", "--out", str(tmp_path / "run")]
    command = ["-m", "minibng.examples.mnist_mlp", *flags]
    status, _, err, _ = mpiexec([command] * 2)          # a folder with a checkpoint to resume, at world size 2
    assert status == 0, err[-3000:]
    checkpoint = tmp_path / "run" / "depth2-adam-seed0" / "checkpoint.npz"
    written = checkpoint.read_bytes()
    status, out, err, seconds = mpiexec([[*command, "--resume"], command])
    assert status != 0 and "epoch 1/1" not in out and "Traceback" not in err, (status, seconds, out, err)
    assert ("the ranks hold different settings (resume: true on rank 0, false on rank 1)" in err
            and err.count("stopping all 2 ranks") == 1), err
    assert checkpoint.read_bytes() == written
    on_cpu = settings.judge(mnist_mlp.SCRIPT, flags, 2)
    on_gpus = [dataclasses.replace(on_cpu, device=device) for device in ("gpu", "gpu:0", "gpu:1", "cuda:1")]
    assert len({json.dumps(s.shared_by_every_rank(), sort_keys=True) for s in on_gpus}) == 1
    assert on_cpu.shared_by_every_rank() == {**on_gpus[2].shared_by_every_rank(), "device": "cpu"}


@promise("mpi-ctrl-c", "Ctrl-C (SIGINT to `mpiexec -n 2`) while an experiment script trains",
         "exit status 130 without a traceback; rank 0 alone names the last checkpoint and the full command that "
         "continues, `mpiexec -n 2 python -m … --resume`")
def _mpi_ctrl_c(tmp_path):
    argv = ["--depth", "3", "--optimizers", "adamng", "--epochs", "30", "--limit", "2000", "--batch-size", "50",
            "--data-dir", str(real_data_root()), "--out", str(tmp_path / "run"), "--no-progress"]
    command = mpiexec_or_skip() + ["-n", "2", sys.executable, "-m", "minibng.examples.mnist_mlp", *argv]
    environment = {**mpi_environment(), "PYTHONUNBUFFERED": "1"}
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                           start_new_session=True)
    try:
        for line in job.stdout:   # interrupted once the first epoch's checkpoint is written
            if "epoch 2/30" in line:
                job.send_signal(signal.SIGINT)
                break
        _, err = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130 and "Traceback" not in err, err
    continue_with = err.split("To continue: ")[1].strip()
    assert shlex.split(continue_with) == ["mpiexec", "-n", "2", "python", "-m", "minibng.examples.mnist_mlp", *argv,
                                          "--resume"]
    assert err.count("interrupted in depth 3 adamng seed 0") == 1 and "its last checkpoint is" in err, err


@promise("mpi-timeout-not-a-number", "`MINIBNG_MPI_TIMEOUT=abc mpiexec -n 2 python -m minibng.examples.…`",
         "one line naming the variable and what it takes (exit status 2), not a traceback on every rank")
def _mpi_timeout_not_a_number(tmp_path):
    status, out, err, seconds = mpiexec([(tmp_path, ["-m", "minibng.examples.mnist_mlp"])] * 2,
                                        env={"MINIBNG_MPI_TIMEOUT": "abc"})
    assert status == 2 and "Traceback" not in err, (status, seconds, out, err)
    assert err.strip() == ("python -m minibng.examples.mnist_mlp: error: MINIBNG_MPI_TIMEOUT='abc' is not a number of "
                           "seconds > 0 (how long a rank waits for the others in a collective); set it to e.g. 600, "
                           "or unset it for that default"), err


@promise("mpi-fewer-examples-than-ranks", "`mpiexec -n 3 python -m minibng.examples.mnist_mlp --limit 2 "
         "--batch-size 1` (fewer training examples than ranks)", "one usage error (exit status 2) saying each rank "
         "needs at least one example of every step, printed once, before any data is read; not a traceback on every "
         "rank")
def _fewer_examples_than_ranks(tmp_path):
    status, out, err, seconds = mpiexec([(tmp_path, ["-m", "minibng.examples.mnist_mlp", "--limit", "2",
                                                     "--batch-size", "1"])] * 3)
    assert status == 2 and "Traceback" not in err and err.count("error:") == 1, (status, seconds, out, err)
    assert "--limit 2 is fewer than the 3 processes of this run" in err and list(tmp_path.iterdir()) == []


@promise("rank-killed", "one rank is killed (`kill -9`, the out-of-memory killer) in the middle of an epoch",
         "the launcher sees the dead process and ends the other ranks at once (MPICH and Open MPI both do); mpiexec "
         "exits with a non-zero status")
def _rank_killed():
    status, out, err, seconds = mpiexec([[WORKER, "kill", 5]] * 2)
    assert status != 0 and "done" not in out, (status, seconds, out, err)


@promise("rank-non-finite", "the loss or weights become NaN/infinite on one rank only",
         "its NaN gradient reaches every rank through the all-reduce, and every rank raises `NonFiniteError` at the "
         "same step, so a script that goes on to its next run stays in step")
def _rank_non_finite(tmp_path):
    status, _, err, _ = mpiexec([[WORKER, "nan", 5, tmp_path]] * 2)
    assert status == 0, err[-3000:]
    stops = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert stops[0] == stops[1] and "NaN/infinite in epoch 1" in stops[0]


@promise("resume-other-world-size", "`--resume` of a checkpoint written by `mpiexec -n 2` in a run of another "
         "number of processes", "`CheckpointError` naming both world sizes (the data shards and each rank's random "
         "streams depend on it); nothing is restored")
def _resume_other_world_size(tmp_path):
    build_trainer(str(tmp_path), 1).fit()
    path = tmp_path / "checkpoint.npz"
    arrays = load_npz(path)
    save_npz(path, {**arrays, "meta/world_size": 2})
    trainer = build_trainer(str(tmp_path), 2)
    with pytest.raises(OtherWorldSizeError, match=r"written by a run of 2 process\(es\), this run has 1") as info:
        trainer.fit(resume=True)
    assert str(path) in str(info.value) and trainer.history == []
    assert (info.value.saved_world_size, info.value.world_size) == (2, 1) and "mpiexec" not in str(info.value)


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)
