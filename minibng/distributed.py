"""Synchronous data-parallel training on MPI (mpi4py), with NCCL between GPUs: N processes equal one with N× the batch.

    mpiexec -n 4 python -m minibng.examples.mnist_mlp      # 4 ranks of batch 100: every step sees 400 images

Every rank holds the whole model and trains on its own shard of each global batch (``Batches.shard``).  Because
an optimizer keeps its whole gradient in one flat vector g (``opt.flat.g``), a step needs exactly one collective,
before the optimizer's chain:

    g ← (1/N) Σ_r g_r        (in place; rank r's g_r is the gradient of its shard's mean loss, weighted by
                              N·m_r/M when the epoch's last global batch of M rows splits into unequal m_r)

so the block norms ‖g^i‖ are those of the global gradient, and N ranks of batch B take the steps one process takes
with batch N·B (with BatchNorm synchronized by :class:`BatchNormSync`; dropout masks differ per rank).  The
Trainer does the rest: parameters and buffers broadcast from rank 0 when it starts, metric sums added over the
ranks, rank 0 alone locking its folder and writing files, every rank resuming from the bytes rank 0 reads.

A process started without an MPI launcher is a world of one: :func:`world` returns a :class:`World`, whose
collectives do nothing, and nothing is imported from MPI.  Under ``mpiexec`` (a launcher that sets ``PMI_SIZE``
or ``OMPI_COMM_WORLD_SIZE``; ``MINIBNG_MPI=1`` forces MPI, ``MINIBNG_MPI=0`` a world of one) it is an
:class:`MPIWorld` on ``MPI.COMM_WORLD``.  A failure never hangs the job: an exception that leaves a rank
(``sys.excepthook``, or :meth:`World.stop_all_on_error`) prints the rank and the error, then calls ``MPI_Abort``,
which ends every rank; and every collective waits at most ``MINIBNG_MPI_TIMEOUT`` seconds (default 600) for the
other ranks, then aborts the same way.  MPI has no timeout of its own, so collectives are non-blocking calls polled
against a deadline, sleeping between polls (MPICH's blocking calls spin, which starves an oversubscribed machine).
A rank that aborts first waits until the launcher has read its message (at most two seconds): ``MPI_Abort`` may
end the job before the launcher forwards what the rank printed last.  Ctrl-C is no failure: ``mpiexec`` forwards it
to every rank, so each stops on its own (:meth:`World.stop_all_on_error` lets ``KeyboardInterrupt`` through).

Before the ranks train together they can check that they hold the same settings: :meth:`World.differing_texts`
compares a text (the run's configuration, as JSON) across the ranks in one collective, a SHA-256 of it each, and
returns every rank's text only when they differ, so that the caller can say which setting does.
"""
from __future__ import annotations

import array
import collections
import contextlib
import hashlib
import io
import math
import os
import sys
import time
import traceback

import numpy as np

from . import backend, gpu
from .nn import BatchNorm1d, BatchNorm2d

__all__ = ["World", "MPIWorld", "BatchNormSync", "WorldSetupError", "world", "placement_row", "place_on_gpus",
           "nccl_unique_id"]

_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")  # Open MPI, MPICH/Intel, MVAPICH
_world = None


class WorldSetupError(ValueError):
    """The MPI world cannot start as configured (``MINIBNG_MPI_TIMEOUT`` is not a number of seconds > 0).  Every
    rank raises it alike, before any collective; ``rank`` and ``size`` say where (so that one rank can report it)."""

    def __init__(self, message, rank, size):
        super().__init__(message)
        self.rank, self.size = rank, size


def world():
    """This process's :class:`World` (made on the first call): an :class:`MPIWorld` under an MPI launcher that
    started more than one process, else a world of one.  Raises :class:`WorldSetupError` when MPI's settings are
    unusable (then the next call tries again)."""
    global _world
    if _world is None:
        forced = os.environ.get("MINIBNG_MPI", "").strip()
        sizes = [int(os.environ[v]) for v in _SIZE_VARIABLES if os.environ.get(v, "").strip().isdigit()]
        _world = MPIWorld() if forced == "1" or (forced != "0" and max(sizes, default=1) > 1) else World()
    return _world


class World:
    """A world of one process: ``rank`` 0 of ``size`` 1; every collective leaves its arguments as they are."""

    rank, size = 0, 1

    def replicate(self, model, batch_sets, sync_batchnorm=True):
        """Make this process its rank's part of the job: every set of batches yields the rank's shard, and with
        ``sync_batchnorm`` every BatchNorm of ``model`` normalizes with the global batch's statistics."""

    def allreduce_mean(self, array, what="the gradient"):
        """array ← (1/N) Σ_r array_r, in place, on every rank (a contiguous NumPy or CuPy array); returns it."""
        return array

    def allreduce_sum(self, array, what):
        """array ← Σ_r array_r, in place, on every rank; returns it."""
        return array

    def broadcast(self, arrays, what):
        """Every array ← rank 0's, in place."""

    def sum(self, *values) -> list[float]:
        """Σ over the ranks of each number (Python numbers or 0-d arrays, read once), as floats."""
        return [float(v) for v in values]

    def agree(self, flag) -> bool:
        """True when ``flag`` is true on every rank."""
        return bool(self.sum(bool(flag))[0] == self.size)

    def root_file(self, path):
        """The file at ``path`` as rank 0 sees it, for every rank: None when nothing is there (not even a symbolic
        link, which may point nowhere: reading it then fails and says so), else something ``numpy.load`` reads (the
        path itself in a world of one; rank 0's bytes, broadcast, under MPI)."""
        return path if os.path.lexists(path) else None

    def differing_texts(self, text, what) -> list[str] | None:
        """None when every rank holds the same ``text``, else every rank's text in rank order (``what`` names it
        for a timeout's message).  Here, always None."""
        return None

    def stop_every_rank(self, message):
        """End every rank with ``message``, printed once, for a finding every rank made alike (their settings
        differ): here, exit with it."""
        raise SystemExit(f"error: {message}")

    @contextlib.contextmanager
    def stop_all_on_error(self):
        """Under MPI, an exception or an exit with an error status that leaves the block ends every rank (with the
        rank and the error on stderr), but for Ctrl-C, which every rank receives; here, nothing."""
        yield


class MPIWorld(World):
    """``MPI.COMM_WORLD`` as a :class:`World`; CuPy arrays go through NCCL when every rank has a GPU of its own
    and NCCL (:func:`place_on_gpus`), else through host memory over MPI.  Sets ``RandomStream.rank`` so that every
    rank draws its own dropout masks and augmentations, and installs a ``sys.excepthook`` that aborts every rank."""

    def __init__(self):
        try:
            from mpi4py import MPI  # noqa: PLC0415 - only under an MPI launcher
        except ImportError:
            raise ImportError("this process was started by an MPI launcher (mpiexec) but mpi4py is not installed: "
                              "pip install -e \".[mpi]\", or set MINIBNG_MPI=0 to run every process alone") from None
        self.mpi, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = _timeout(self.rank, self.size)
        backend.RandomStream.rank = self.rank
        self._nccl = None
        self._place_on_gpus()
        previous = sys.excepthook

        def abort_every_rank(kind, value, trace):
            previous(kind, value, trace)
            self.abort(f"{kind.__name__}: {value}")

        sys.excepthook = abort_every_rank

    def _place_on_gpus(self):
        """Every rank says, in one collective, on which node it runs, which GPUs it sees (by PCI bus id) and whether
        it has NCCL; then each takes its GPU, and all decide alike how CuPy arrays travel (:func:`place_on_gpus`)."""
        mine = placement_row(self.mpi.Get_processor_name(), gpu.device_count(), gpu.pci_bus_id, gpu.nccl_or_none)
        table = np.empty((self.size, mine.size), dtype=np.int64)
        self._wait(self.comm.Iallgather(mine[None, :], table), "every rank's node and GPUs")
        device, self._host_staging_because = place_on_gpus(table, self.rank)
        if device is not None:
            gpu.use_device(device)

    def replicate(self, model, batch_sets, sync_batchnorm=True):
        for batches in batch_sets:
            if not hasattr(batches, "shard"):
                raise TypeError(f"{type(batches).__name__} cannot be split across the {self.size} ranks of an MPI run: "
                                "give the Trainer minibng.data.Batches or ptb.Windows (they have shard(rank, size))")
            batches.shard(self.rank, self.size)
        if sync_batchnorm:
            for m in model.modules():
                if isinstance(m, (BatchNorm1d, BatchNorm2d)):
                    m.sync = BatchNormSync(self)

    # -- collectives ----------------------------------------------------------------------------------------------
    def allreduce_mean(self, array, what="the gradient"):
        self.allreduce_sum(array, what)
        array /= self.size
        return array

    def allreduce_sum(self, array, what):
        return self._collective(array, what, lambda a: self.comm.Iallreduce(self.mpi.IN_PLACE, a, op=self.mpi.SUM),
                                lambda nccl, comm, a, kind, stream: comm.allReduce(
                                    a.data.ptr, a.data.ptr, a.size, kind, nccl.NCCL_SUM, stream))

    def broadcast(self, arrays, what):
        for array in arrays:
            self._collective(array, what, lambda a: self.comm.Ibcast(a, root=0),
                             lambda nccl, comm, a, kind, stream: comm.bcast(a.data.ptr, a.size, kind, 0, stream))

    def sum(self, *values):
        totals = np.array([float(v) for v in values], dtype=np.float64)
        self.allreduce_sum(totals, "the metric sums")
        return totals.tolist()

    def root_file(self, path):
        blob, size = b"", np.array([-1], dtype=np.int64)
        if self.rank == 0 and os.path.lexists(path):
            try:
                with open(path, "rb") as f:
                    blob = f.read()
            except OSError:
                blob = b""  # every rank then refuses it as damaged, with the same message
            size[0] = len(blob)
        self._wait(self.comm.Ibcast(size, root=0), f"the size of {path}")
        if size[0] < 0:
            return None
        data = np.frombuffer(blob, dtype=np.uint8).copy() if self.rank == 0 else np.empty(int(size[0]), np.uint8)
        self._wait(self.comm.Ibcast(data, root=0), f"the bytes of {path}")
        return io.BytesIO(data.tobytes())

    def differing_texts(self, text, what):
        mine = np.frombuffer(hashlib.sha256(text.encode()).digest(), dtype=np.uint8).copy()
        digests = np.empty((self.size, mine.size), dtype=np.uint8)
        self._wait(self.comm.Iallgather(mine, digests), what)
        if (digests == digests[0]).all():
            return None
        return [blob.decode() for blob in self._allgather_bytes(text.encode(), what)]

    def _allgather_bytes(self, blob, what):
        """Every rank's ``blob`` (bytes of any length), in rank order: their lengths, then their bytes."""
        lengths = np.empty(self.size, dtype=np.int64)
        self._wait(self.comm.Iallgather(np.array([len(blob)], dtype=np.int64), lengths), f"the length of {what}")
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        gathered = np.empty(int(lengths.sum()), dtype=np.uint8)
        self._wait(self.comm.Iallgatherv(np.frombuffer(blob, dtype=np.uint8).copy(),
                                         [gathered, (lengths.tolist(), offsets.tolist())]), what)
        return [gathered[o:o + n].tobytes() for o, n in zip(offsets, lengths)]

    def stop_every_rank(self, message):
        if self.rank == 0:
            self.abort(message)
        deadline = time.monotonic() + self.timeout   # rank 0's MPI_Abort ends this rank before then
        while time.monotonic() < deadline:
            time.sleep(0.05)
        self.abort(message)

    def _collective(self, array, what, mpi_call, nccl_call):
        """Run a collective on ``array``: MPI on host arrays; NCCL on CuPy arrays, or MPI on a host copy."""
        if backend.array_library_name(array) != "CuPy":
            self._wait(mpi_call(array), what)
            return array
        nccl = self._nccl_module()
        if nccl and array.dtype.name in ("float32", "float64"):
            stream = gpu.current_stream()
            kind = nccl.NCCL_FLOAT32 if array.dtype.name == "float32" else nccl.NCCL_FLOAT64
            nccl_call(nccl, self._nccl_comm, array, kind, stream.ptr)
            self._wait(stream, what, done=lambda s: s.done)
            return array
        host = backend.asnumpy(array)
        self._wait(mpi_call(host), what)
        array[...] = backend.to_device(host, backend.device_of(array))
        return array

    def _nccl_module(self):
        """cupy.cuda.nccl with a communicator over every rank (rank 0's id broadcast over MPI), or False where the
        ranks decided to stage CuPy arrays through host memory (rank 0 says why, once)."""
        if self._nccl is None:
            self._nccl = False
            if self._host_staging_because:
                if self.rank == 0:
                    print(f"minibng: CuPy arrays travel through host memory (MPI), not NCCL: "
                          f"{self._host_staging_because}", file=sys.stderr, flush=True)
            else:
                nccl = gpu.nccl_or_none()
                uid = nccl_unique_id(nccl, self.rank, lambda a: self._wait(self.comm.Ibcast(a, root=0), "the NCCL id"))
                self._nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)
                self._nccl = nccl
        return self._nccl

    def _wait(self, request, what, done=lambda r: r.Test()):
        """Wait for a non-blocking collective (or a CUDA stream), at most ``timeout`` seconds, then abort."""
        start = time.monotonic()
        while not done(request):
            waited = time.monotonic() - start
            if waited > self.timeout:
                self.abort(f"waited {self.timeout:g} s for {what}: another rank stopped answering (it hangs, or died "
                           "unseen by MPI); MINIBNG_MPI_TIMEOUT sets how long to wait")
            time.sleep(0 if waited < 0.01 else 0.001)

    # -- failure --------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stop_all_on_error(self):
        try:
            yield
        except SystemExit as e:
            if e.code is None or e.code == 0:
                raise
            self.abort(e.code if isinstance(e.code, str) else f"exit status {e.code}")
        except KeyboardInterrupt:
            raise   # mpiexec sent Ctrl-C to every rank: each stops by itself
        except BaseException as e:
            traceback.print_exc()
            self.abort(f"{type(e).__name__}: {e}")

    def abort(self, message):
        """Print which rank stops and why, then end every rank of the job (``MPI_Abort``, exit status 1)."""
        print(f"minibng: rank {self.rank} of {self.size}: {message}\nminibng: stopping all {self.size} ranks "
              "(MPI_Abort)", file=sys.stderr, flush=True)
        _wait_until_read(sys.stderr)
        self.comm.Abort(1)
        os._exit(1)  # MPICH's Abort returns while the launcher kills the job: never run on


def _timeout(rank, size) -> float:
    """``MINIBNG_MPI_TIMEOUT`` in seconds (600 when unset); anything but a number > 0 is a WorldSetupError."""
    text = os.environ.get("MINIBNG_MPI_TIMEOUT", "600")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise WorldSetupError(f"MINIBNG_MPI_TIMEOUT={text!r} is not a number of seconds > 0 (how long a rank waits "
                              "for the others in a collective); set it to e.g. 600, or unset it for that default",
                              rank, size)
    return seconds


def _wait_until_read(stream, most=2.0):
    """Wait until whoever reads ``stream`` (a pipe to the MPI launcher) has read all of it, at most ``most`` seconds;
    at once where ``stream`` is no pipe or the system cannot tell (FIONREAD, Linux and the BSDs)."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
        import termios  # noqa: PLC0415

        fd, unread = stream.fileno(), array.array("i", [0])
        deadline = time.monotonic() + most
        while time.monotonic() < deadline:
            fcntl.ioctl(fd, termios.FIONREAD, unread)
            if unread[0] == 0:
                return
            time.sleep(0.01)
    except (ImportError, OSError, ValueError, AttributeError):
        return


_MOST_GPUS = 64   # the GPUs of a rank that its row of the placement names (a rank takes one of its first 64)


def _identity(name: str) -> int:
    """A 64-bit number for a name (a node's, a GPU's PCI bus id): the first 8 bytes of its SHA-256."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little", signed=True)


def placement_row(node, gpu_count, bus_id_of, nccl_or_none):
    """A rank's row of the placement table (int64): the identity of its ``node`` (processor name), the GPUs it sees
    (``gpu_count``, at most 64), whether it has NCCL (``nccl_or_none()``), then the identity of each GPU's PCI bus
    id (``bus_id_of(index)``), GPU 0 first, zeros after."""
    count = min(gpu_count, _MOST_GPUS)
    row = np.zeros(3 + _MOST_GPUS, dtype=np.int64)
    row[0] = _identity(node)
    row[1] = count
    row[2] = count > 0 and nccl_or_none() is not None
    row[3:3 + count] = [_identity(bus_id_of(index).strip().upper()) for index in range(count)]
    return row


def place_on_gpus(table, rank):
    """(the GPU rank ``rank`` takes or None, why CuPy arrays must travel through host memory or None) from every
    rank's row of ``table`` (:func:`placement_row`: node, GPUs seen, has NCCL, the GPUs' PCI bus ids).

    The rank with index l among its node's ranks takes GPU l mod (the GPUs it sees): with every GPU visible to every
    rank, rank l of a node takes GPU l; with one GPU per rank (CUDA_VISIBLE_DEVICES per rank, Slurm's
    --gpus-per-task), each takes its own.  NCCL refuses two ranks on one GPU, so NCCL carries CuPy arrays only when
    no two ranks of a node take GPUs of the same PCI bus id and every rank has NCCL; otherwise every rank, having
    read the same table, stages them through host memory over MPI (slower, never wrong).
    """
    table = np.asarray(table, dtype=np.int64)
    nodes = table[:, 0]
    gpus = table[:, 1]
    has_nccl = table[:, 2]
    bus_ids = table[:, 3:]
    devices = [_local_index(nodes, r) % int(gpus[r]) if gpus[r] > 0 else None for r in range(len(table))]
    ranks_per_gpu = collections.Counter((int(nodes[r]), int(bus_ids[r, d])) for r, d in enumerate(devices)
                                        if d is not None)
    shared = sum(count for count in ranks_per_gpu.values() if count > 1)
    without = int((has_nccl == 0).sum())
    reasons = []
    if shared:
        reasons.append(f"{shared} of {len(table)} ranks share a GPU (two ranks of one node would take the same GPU, "
                       "by its PCI bus id)")
    if without:
        reasons.append(f"{without} of {len(table)} ranks have no GPU or no NCCL")
    return devices[rank], "; ".join(reasons) or None


def _local_index(nodes, rank):
    """The index of ``rank`` among the ranks of its node, in rank order."""
    return int((nodes[:rank] == nodes[rank]).sum())


_ID_BYTES, _ID_SIGNED_CHARS, _ID_UNSIGNED_CHARS = 0, 1, 2


def nccl_unique_id(nccl, rank, broadcast):
    """Rank 0's NCCL unique id on every rank, as the installed CuPy takes it: 128 ``bytes`` from CuPy 14 (whose
    ``get_unique_id`` returns bytes and whose ``NcclCommunicator`` accepts only bytes), a tuple of 128 ints before
    (C chars: signed on x86-64, unsigned on Arm).  It travels as 129 bytes, its form then its bytes;
    ``broadcast(buffer)`` gives every rank rank 0's buffer."""
    buffer = np.zeros(129, dtype=np.uint8)
    if rank == 0:
        uid = nccl.get_unique_id()
        if isinstance(uid, bytes):
            buffer[0], buffer[1:] = _ID_BYTES, np.frombuffer(uid, dtype=np.uint8)
        else:
            buffer[0] = _ID_SIGNED_CHARS if min(uid) < 0 else _ID_UNSIGNED_CHARS
            buffer[1:] = np.array(uid, dtype=np.int64).astype(np.uint8)   # a char's byte, negatives included
    broadcast(buffer)
    if buffer[0] == _ID_BYTES:
        return buffer[1:].tobytes()
    return tuple(int(v) for v in (buffer[1:].view(np.int8) if buffer[0] == _ID_SIGNED_CHARS else buffer[1:]))


class BatchNormSync:
    """BatchNorm's ``sync`` hook (see :mod:`minibng.nn.norm`): its per-channel sums and its row count summed over every
    rank, in one all-reduce, so that μ, σ² and the backward's Σ dy, Σ dy·x̂ are those of the global batch.

    The sums travel in float64 (the count M exact); on a GPU, reading M back is one device synchronization per call.
    """

    def __init__(self, world):
        self.world = world

    def __call__(self, sums, count):
        xp = backend.get_array_module(*sums)
        size, dtype = sums[0].size, sums[0].dtype
        buffer = xp.concatenate([s.astype(xp.float64).ravel() for s in sums] + [xp.full(1, count, dtype=xp.float64)])
        self.world.allreduce_sum(buffer, "BatchNorm's batch statistics")
        return [buffer[i * size:(i + 1) * size].astype(dtype) for i in range(len(sums))], round(float(buffer[-1]))
