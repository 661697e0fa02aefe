"""Data-parallel training (minibng.distributed): shards, per-rank random streams, and 2-rank MPI jobs that must equal
one process with twice the batch, resume bit-identically and leave every file to rank 0.

The MPI jobs (tests/mpi_worker.py under ``mpiexec -n 2``, a few seconds each) skip, naming the install command,
where mpi4py or mpiexec is missing.  Failures of a rank are in tests/test_faults_distributed.py.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibng as mb
from minibng import backend, optim
from minibng.data import Batches, ptb
from support import mpiexec

TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "mpi_worker.py"


def _global_batches(n, batch_size, world, drop_last=False):
    """Every rank's batches of one epoch as (indices, weight) lists, rank by rank."""
    ranks = []
    for rank in range(world):
        batches = Batches(np.arange(n), np.arange(n), batch_size, seed=5, drop_last=drop_last)
        if world > 1:
            batches.shard(rank, world)
        ranks.append([(backend.asnumpy(x).tolist(), batches.loss_scale) for x, _ in batches])
    return ranks


@pytest.mark.parametrize("n, batch_size, world, drop_last", [(69, 8, 2, False), (64, 8, 2, False), (50, 4, 3, False),
                                                             (50, 4, 3, True), (98, 8, 4, False), (33, 5, 4, False)])
def test_the_ranks_shards_are_the_one_process_batches_of_n_times_the_size(n, batch_size, world, drop_last):
    """Rank r's batch k is its slice of global batch k, and the ranks' slices make up one process's batch k of
    world × batch_size rows: no sample twice; only a last global batch with fewer rows than ranks is left out."""
    whole = _global_batches(n, batch_size * world, 1, drop_last)[0]
    ranks = _global_batches(n, batch_size, world, drop_last)
    assert len({len(r) for r in ranks}) == 1, "every rank takes the same number of steps"
    rest = n % (batch_size * world)
    assert len(ranks[0]) == len(whole) - (1 if 0 < rest < world and not drop_last else 0)
    for k, parts in enumerate(zip(*ranks)):
        rows = [i for part, _ in parts for i in part]
        assert rows == whole[k][0] and all(part for part, _ in parts)
        weights = [w for _, w in parts]
        assert sum(weights) == pytest.approx(world)
        assert [w * len(whole[k][0]) / world for w in weights] == pytest.approx([len(p) for p, _ in parts])
    seen = [i for r in ranks for part, _ in r for i in part]
    assert len(seen) == len(set(seen))


def test_the_ranks_of_a_text_read_the_streams_of_one_process_with_n_times_the_streams():
    ids = np.arange(403)
    whole = ptb.Windows(ids, 6, bptt=5)
    parts = []
    for rank in range(3):
        windows = ptb.Windows(ids, 2, bptt=5)
        windows.shard(rank, 3)
        parts.append(list(windows))
    assert len(parts[0]) == len(whole)
    for (x, y), *shards in zip(whole, *parts):
        np.testing.assert_array_equal(x, np.concatenate([s[0] for s in shards], axis=1))
        np.testing.assert_array_equal(y, np.concatenate([s[1] for s in shards], axis=1))


def test_every_rank_draws_its_own_masks_from_the_same_saved_state(monkeypatch):
    first = backend.RandomStream(seed=7)
    own = first.random((1000,), np, np.float64)
    for rank in (1, 2):
        monkeypatch.setattr(backend.RandomStream, "rank", rank)
        stream = backend.RandomStream(seed=7)
        draw = stream.random((1000,), np, np.float64)
        assert stream.state() == first.state() and not np.array_equal(draw, own)
    monkeypatch.setattr(backend.RandomStream, "rank", 0)
    np.testing.assert_array_equal(backend.RandomStream(seed=7).random((1000,), np, np.float64), own)


def test_a_run_without_a_launcher_is_a_world_of_one_and_imports_nothing_from_mpi():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MV2_", "MINIBNG_MPI"))}
    code = ("import sys, minibng.train\nfrom minibng import distributed\nw = distributed.world()\n"
            "print(type(w).__name__, w.rank, w.size, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["World", "0", "1", "False"]


def test_a_checkpoint_records_the_world_size(tmp_path):
    from fault_worker import build_trainer
    from minibng.train import load_npz

    build_trainer(str(tmp_path), 1).fit()
    assert load_npz(tmp_path / "checkpoint.npz")["meta/world_size"] == 1


def _without_seconds(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


# -- MPI jobs -------------------------------------------------------------------------------------------------------
def _run(ranks, **options):
    status, out, err, _ = mpiexec(ranks, **options)
    assert status == 0, f"mpiexec failed with status {status}:\n{out[-2000:]}\n{err[-4000:]}"
    return out


def test_two_ranks_take_the_steps_of_one_process_with_twice_the_batch(tmp_path):
    """Every preset, float64, synchronized BatchNorm, no dropout, an unevenly split last batch: after 10 steps the
    parameters, BatchNorm statistics and every metric (losses, accuracy, block norms) equal the one-process run's
    to rounding, and both ranks hold bitwise the same model."""
    import mpi_worker

    _run([[WORKER, "equivalence", tmp_path]] * 2)
    for name in optim.preset_names():
        reference = mpi_worker.equivalence_trainer(name, 2 * 8)
        reference.fit()
        expected = mpi_worker.result(reference)
        ranks = [dict(np.load(tmp_path / f"{name}-rank{r}.npz")) for r in (0, 1)]
        for key, value in expected.items():
            np.testing.assert_array_equal(ranks[1][key], ranks[0][key], err_msg=f"{name}: the ranks differ in {key}")
            np.testing.assert_allclose(ranks[0][key], value, rtol=1e-12, atol=1e-14, err_msg=f"{name}: {key}")
        assert reference.optimizer.step_count == 10


def test_resume_at_the_same_world_size_is_bit_identical_and_rank_0_alone_writes(tmp_path):
    """Each rank in its own working folder (as on a cluster without a shared file system): rank 1's stays empty,
    and a run stopped after 2 epochs and resumed to 3 ends with the bytes of an uninterrupted 3-epoch run's."""
    folders = {name: [tmp_path / name / f"rank{r}" for r in (0, 1)] for name in ("straight", "resumed")}
    for rank_folders in folders.values():
        for folder in rank_folders:
            folder.mkdir(parents=True)
    _run([(f, [WORKER, "train", "run", 3]) for f in folders["straight"]])
    _run([(f, [WORKER, "train", "run", 2]) for f in folders["resumed"]])
    _run([(f, [WORKER, "train", "run", 3, "--resume"]) for f in folders["resumed"]])
    for rank0, rank1 in folders.values():
        assert list(rank1.iterdir()) == [], f"rank 1 wrote {list(rank1.rglob('*'))}"
        assert (rank0 / "run" / "checkpoint.npz").exists()
    straight, resumed = (folders[n][0] / "run" for n in ("straight", "resumed"))
    assert _without_seconds(straight / "metrics.csv") == _without_seconds(resumed / "metrics.csv")
    a, b = (mb.train.load_npz(f / "checkpoint.npz") for f in (straight, resumed))
    assert a["meta/world_size"] == 2 and a.keys() == b.keys()
    for key in a:
        if key.startswith(("model/", "optim/", "rng/")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3] and lines[-1]["test_accuracy"] > 0.8


def test_mnist_mlp_on_two_processes_equals_one_process_with_twice_the_batch(tmp_path, monkeypatch):
    """`mpiexec -n 2 python -m minibng.examples.mnist_mlp` (float32, batch 50 per rank) against one process with
    batch 100: the same table to float32 rounding; the header names the world, the checkpoint records it, and rank 1
    (in a folder of its own) writes nothing."""
    from minibng.examples import mnist_mlp
    from support import real_data_root

    flags = ["--depth", "3", "--epochs", "2", "--limit", "450", "--optimizers", "adam,sgdmng", "--threads", "1",
             "--data-dir", str(real_data_root()), "--no-progress", "--out", "runs"]
    ranks = [tmp_path / "rank0", tmp_path / "rank1", tmp_path / "one"]
    for folder in ranks:
        folder.mkdir()
    out = _run([(f, ["-m", "minibng.examples.mnist_mlp", *flags, "--batch-size", 50]) for f in ranks[:2]])
    assert "world   2 processes (MPI; rank 0 writes): global batch 2 × 50 = 100, learning rate as given" in out
    assert list(ranks[1].iterdir()) == []
    monkeypatch.chdir(ranks[2])
    mnist_mlp.main([*flags, "--batch-size", "100"])
    two, one = (_without_seconds(f / "runs" / "metrics.csv") for f in ranks[::2])
    assert len(two) == len(one) == 4
    for a, b in zip(two, one):
        same = [k for k in a if "loss" not in k and "accuracy" not in k]   # optimizer, depth, seed, epoch
        assert [a[k] for k in same] == [b[k] for k in same]
        for key in ("train_loss", "test_loss", "test_accuracy"):   # an image on the edge may change its class
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5, abs=3e-4 * ("accuracy" in key)), key
    config = mb.train.load_npz(ranks[0] / "runs" / "depth3-adam-seed0" / "checkpoint.npz")["meta/config"]
    assert (config["world_size"], config["global_batch"], config["lr_scaling"]) == (2, 100, "none")
