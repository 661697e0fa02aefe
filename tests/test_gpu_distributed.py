"""minibng.distributed's GPU paths on fake ranks (tests/fake_ranks.py: threads, a fake communicator, fake device
counts and fake NCCL modules of CuPy 13 and 14): which GPU each rank takes, when NCCL is used, the NCCL id's
exchange, and NCCL's all-reduce and broadcast as the Trainer calls them."""
import numpy as np
import pytest

import fake_ranks
from minibng import distributed, gpu


SHARED = "{} of {} ranks share a GPU (two ranks of one node would take the same GPU, by its PCI bus id)"


def bus_id(index):
    """The PCI bus id of a node's GPU ``index`` (as the node numbers it; a rank may see it under another number)."""
    return f"0000:{0x17 + index:02X}:00.0"


def table_of(nodes, visible, nccl=lambda: "nccl"):
    """Every rank's placement row: ``visible[r]`` lists the node's GPUs rank r sees, in the order it numbers them."""
    return [distributed.placement_row(node, len(seen), lambda i, seen=seen: bus_id(seen[i]), nccl)
            for node, seen in zip(nodes, visible)]


@pytest.mark.parametrize("nodes, visible, devices, shared", [
    ("AABB", [[0, 1]] * 4, [0, 1, 0, 1], None),
    ("ABAB", [[0, 1]] * 4, [0, 0, 1, 1], None),                      # ranks interleaved over the nodes
    ("AAA", [[0, 1]] * 3, [0, 1, 0], SHARED.format(2, 3)),            # ranks 0 and 2 on GPU 0
    ("AABBB", [[0, 1]] * 2 + [[0, 1, 2, 3]] * 3, [0, 1, 0, 1, 2], None),
    ("AAAA", [[0], [1], [2], [3]], [0, 0, 0, 0], None),                # one GPU per rank (CUDA_VISIBLE_DEVICES)
    ("AAAA", [[0, 1], [0, 1], [2, 3], [2, 3]], [0, 1, 0, 1], None),   # each pair of ranks sees two GPUs of its own
    ("AA", [[0], [0]], [0, 0], SHARED.format(2, 2)),                   # two ranks given the same GPU
    ("AA", [[0, 1], [1, 0]], [0, 1], SHARED.format(2, 2)),             # GPU 0 under two numbers
    ("AB", [[0], [0]], [0, 0], None),                                  # one bus id on two nodes: two GPUs
    ("AB", [[], []], [None, None], "2 of 2 ranks have no GPU or no NCCL"),   # a CPU job: NCCL is never asked for
])
def test_each_rank_of_a_node_takes_its_own_gpu_or_every_rank_stages_through_the_host(nodes, visible, devices, shared):
    table = table_of(nodes, visible)
    plans = [distributed.place_on_gpus(table, rank) for rank in range(len(nodes))]
    assert [device for device, _ in plans] == devices
    assert {reason for _, reason in plans} == {shared}


def test_one_rank_without_nccl_makes_every_rank_stage_through_the_host():
    table = [*table_of("A", [[0]]), *table_of("A", [[1]], nccl=lambda: None)]
    assert {distributed.place_on_gpus(table, r)[1] for r in (0, 1)} == {"1 of 2 ranks have no GPU or no NCCL"}


@pytest.fixture
def fake_gpus(monkeypatch):
    """Per-rank fake device counts (by thread) and a record of the GPU each rank made current."""
    import threading

    seen, chosen, nccl = threading.local(), {}, {}

    def install(counts, nccl_module=None, visible=None):
        """``counts[r]``: the GPUs rank r sees; ``visible[r]``: which of its node's GPUs (default: the first ones)."""
        visible = visible or [list(range(count)) for count in counts]
        monkeypatch.setattr(gpu, "device_count", lambda: counts[seen.rank])
        monkeypatch.setattr(gpu, "pci_bus_id", lambda index: bus_id(visible[seen.rank][index]))
        monkeypatch.setattr(gpu, "use_device", lambda index: chosen.__setitem__(seen.rank, index))
        monkeypatch.setattr(gpu, "nccl_or_none", lambda: nccl_module)
        monkeypatch.setattr(gpu, "current_stream", lambda: fake_ranks.Stream())
        return seen, chosen

    return install


def test_every_rank_makes_one_collective_to_place_itself_even_a_rank_that_sees_no_gpu(fake_gpus):
    """A job mixing a rank that sees GPUs with one that sees none: both take part in the same single collective (no
    rank waits in a collective the other never calls), and the GPU rank takes GPU 0."""
    seen, chosen = fake_gpus([1, 0])
    job = fake_ranks.Job(2, ["n0", "n0"])

    def rank(r):
        seen.rank = r
        return fake_ranks.world(job, r)._host_staging_because

    reasons = fake_ranks.run_ranks(2, rank)
    assert chosen == {0: 0} and len(set(reasons)) == 1
    assert sorted(job.calls) == [(0, "allgather"), (1, "allgather")]


def cupy13_id(rng, signed=True):
    raw = rng.integers(0, 256, 128)
    return tuple(int(v) - 256 * (signed and v > 127) for v in raw)


@pytest.mark.parametrize("version", ["13 (x86-64: signed chars)", "13 (Arm: unsigned chars)", "14 (bytes)"])
def test_the_nccl_id_reaches_every_rank_in_the_form_the_installed_cupy_takes(fake_gpus, version):
    """Then the Trainer's collectives on CuPy arrays run through NCCL: all-reduce (mean) and broadcast."""
    rng = np.random.default_rng(0)
    unique_id = (bytes(rng.integers(0, 256, 128).astype(np.uint8)) if version.startswith("14")
                 else cupy13_id(rng, signed="x86" in version))
    nccl = fake_ranks.Nccl(unique_id, type(unique_id), 3)
    seen, chosen = fake_gpus([2, 2, 1], nccl)
    job = fake_ranks.Job(3, ["a", "a", "b"])

    def rank(r):
        seen.rank = r
        world = fake_ranks.world(job, r)
        g = np.arange(4, dtype=np.float32).view(fake_ranks.FakeCupyArray) * (r + 1)
        world.allreduce_mean(g)
        weights = np.full(3, float(r)).view(fake_ranks.FakeCupyArray)
        world.broadcast([weights], "the parameters")
        return np.asarray(g), np.asarray(weights)

    results = fake_ranks.run_ranks(3, rank)
    assert chosen == {0: 0, 1: 1, 2: 0}
    assert {r: made for r, made in nccl.made.items()} == {r: (3, unique_id) for r in range(3)}
    for g, weights in results:
        np.testing.assert_array_equal(g, np.arange(4) * 2.0)     # (1 + 2 + 3) / 3
        np.testing.assert_array_equal(weights, np.zeros(3))


def test_ranks_sharing_a_gpu_stage_cupy_arrays_through_host_memory_and_rank_0_says_why(fake_gpus, capsys, monkeypatch):
    nccl = fake_ranks.Nccl(bytes(128), bytes, 2)
    seen, chosen = fake_gpus([1, 1], nccl)
    monkeypatch.setattr(distributed.backend, "asnumpy", lambda array: np.array(array))   # a copy, as .get() makes
    monkeypatch.setattr(distributed.backend, "device_of", lambda array: "gpu:0")
    monkeypatch.setattr(distributed.backend, "to_device", lambda host, device: host)
    job = fake_ranks.Job(2, ["a", "a"])

    def rank(r):
        seen.rank = r
        world = fake_ranks.world(job, r)
        g = np.full(3, r + 1.0).view(fake_ranks.FakeCupyArray)
        world.allreduce_sum(g, "the gradient")
        return np.asarray(g)

    for g in fake_ranks.run_ranks(2, rank):
        np.testing.assert_array_equal(g, [3.0, 3.0, 3.0])
    assert chosen == {0: 0, 1: 0} and nccl.made == {}
    assert "through host memory (MPI), not NCCL: 2 of 2 ranks share a GPU" in capsys.readouterr().err


def test_one_gpu_per_rank_through_cuda_visible_devices_is_no_shared_gpu(fake_gpus, capsys):
    """Slurm's --gpus-per-task: every rank sees one GPU, its own, numbered 0; NCCL carries the gradient."""
    nccl = fake_ranks.Nccl(bytes(128), bytes, 2)
    seen, chosen = fake_gpus([1, 1], nccl, visible=[[0], [1]])
    job = fake_ranks.Job(2, ["a", "a"])

    def rank(r):
        seen.rank = r
        world = fake_ranks.world(job, r)
        g = np.full(3, r + 1.0).view(fake_ranks.FakeCupyArray)
        world.allreduce_mean(g)
        return world._host_staging_because, np.asarray(g)

    for reason, g in fake_ranks.run_ranks(2, rank):
        assert reason is None
        np.testing.assert_array_equal(g, [1.5, 1.5, 1.5])
    assert chosen == {0: 0, 1: 0} and sorted(nccl.made) == [0, 1]
    assert "host memory" not in capsys.readouterr().err
