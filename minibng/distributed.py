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
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import traceback

import numpy as np

from . import backend
from .nn import BatchNorm1d, BatchNorm2d

__all__ = ["World", "MPIWorld", "BatchNormSync", "world"]

_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")  # Open MPI, MPICH/Intel, MVAPICH
_world = None


def world():
    """This process's :class:`World` (made on the first call): an :class:`MPIWorld` under an MPI launcher that
    started more than one process, else a world of one."""
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
        """The file at ``path`` as rank 0 sees it, for every rank: None when it does not exist there, else something
        ``numpy.load`` reads (the path itself in a world of one; rank 0's bytes, broadcast, under MPI)."""
        return path if os.path.exists(path) else None

    @contextlib.contextmanager
    def stop_all_on_error(self):
        """Under MPI, an exception or an exit with an error status that leaves the block ends every rank (with the
        rank and the error on stderr); here, nothing."""
        yield


class MPIWorld(World):
    """``MPI.COMM_WORLD`` as a :class:`World`; CuPy arrays go through NCCL (one rank per GPU), or through host
    memory over MPI where NCCL is missing.  Sets ``RandomStream.rank`` so that every rank draws its own dropout
    masks and augmentations, and installs a ``sys.excepthook`` that aborts every rank."""

    def __init__(self):
        try:
            from mpi4py import MPI  # noqa: PLC0415 - only under an MPI launcher
        except ImportError:
            raise ImportError("this process was started by an MPI launcher (mpiexec) but mpi4py is not installed: "
                              "pip install -e \".[mpi]\", or set MINIBNG_MPI=0 to run every process alone") from None
        self.mpi, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        text = os.environ.get("MINIBNG_MPI_TIMEOUT", "600")
        try:
            self.timeout = float(text)
        except ValueError:
            self.timeout = float("nan")
        if not self.timeout > 0:
            raise ValueError(f"MINIBNG_MPI_TIMEOUT must be a number of seconds > 0, got {text!r}")
        backend.RandomStream.rank = self.rank
        self._nccl = None
        self._use_local_gpu()
        previous = sys.excepthook

        def abort_every_rank(kind, value, trace):
            previous(kind, value, trace)
            self.abort(f"{kind.__name__}: {value}")

        sys.excepthook = abort_every_rank

    def _use_local_gpu(self):
        """One rank per GPU: the rank with index l on its node makes GPU l (mod the node's GPUs) its "gpu"."""
        cupy = backend.cupy_or_none()
        try:
            count = cupy.cuda.runtime.getDeviceCount() if cupy is not None else 0
        except Exception:  # a CuPy without a usable driver: a CPU run
            count = 0
        if count:
            local = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
            cupy.cuda.Device(local.Get_rank() % count).use()
            local.Free()

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
        if self.rank == 0 and os.path.exists(path):
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

    def _collective(self, array, what, mpi_call, nccl_call):
        """Run a collective on ``array``: MPI on host arrays; NCCL on CuPy arrays, or MPI on a host copy."""
        if backend.array_library_name(array) != "CuPy":
            self._wait(mpi_call(array), what)
            return array
        nccl = self._nccl_module()
        if nccl and array.dtype.name in ("float32", "float64"):
            stream = backend.cupy_or_none().cuda.get_current_stream()
            kind = nccl.NCCL_FLOAT32 if array.dtype.name == "float32" else nccl.NCCL_FLOAT64
            nccl_call(nccl, self._nccl_comm, array, kind, stream.ptr)
            self._wait(stream, what, done=lambda s: s.done)
            return array
        host = backend.asnumpy(array)
        self._wait(mpi_call(host), what)
        array[...] = backend.to_device(host, backend.device_of(array))
        return array

    def _nccl_module(self):
        """cupy.cuda.nccl with a communicator over every rank (its id broadcast over MPI), or False where NCCL is
        missing on any rank (then CuPy arrays are staged through host memory)."""
        if self._nccl is None:
            try:
                from cupy.cuda import nccl  # noqa: PLC0415 - GPU runs only
                usable = bool(getattr(nccl, "available", True))
            except ImportError:
                nccl, usable = None, False
            self._nccl = False
            if self.agree(usable):
                uid = np.array(nccl.get_unique_id() if self.rank == 0 else [0] * 128, dtype=np.int64)
                self._wait(self.comm.Ibcast(uid, root=0), "the NCCL id")
                self._nccl_comm = nccl.NcclCommunicator(self.size, tuple(int(v) for v in uid), self.rank)
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
        except BaseException as e:
            traceback.print_exc()
            self.abort(f"{type(e).__name__}: {e}")

    def abort(self, message):
        """Print which rank stops and why, then end every rank of the job (``MPI_Abort``, exit status 1)."""
        print(f"minibng: rank {self.rank} of {self.size}: {message}\nminibng: stopping all {self.size} ranks "
              "(MPI_Abort)", file=sys.stderr, flush=True)
        self.comm.Abort(1)
        os._exit(1)  # MPICH's Abort returns while the launcher kills the job: never run on


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
