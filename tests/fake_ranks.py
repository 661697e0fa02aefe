"""Fake ranks for testing minibng.distributed's GPU paths without MPI or a GPU: N MPIWorlds in N threads of one
process, over a fake communicator whose non-blocking collectives complete once every rank has posted them, fake
device counts, and fake NCCL modules with CuPy 13's and CuPy 14's types (CuPy 13.6 and 14.2's nccl.pyx:
``get_unique_id`` returns a tuple of 128 C chars, then 128 bytes; ``NcclCommunicator(ndev, commId, rank)`` takes
exactly a tuple, then exactly bytes)."""
import concurrent.futures
import ctypes
import threading

import numpy as np

from minibng import distributed

IN_PLACE = object()


class Job:
    """What the ranks share: every collective's contributions, by rank and by the order of the rank's calls."""

    def __init__(self, size, nodes):
        self.size, self.nodes, self.lock = size, nodes, threading.Lock()
        self.posted, self.calls = {}, []

    def post(self, rank, sequence, kind, value):
        with self.lock:
            self.posted.setdefault(sequence, {})[rank] = value
            self.calls.append((rank, kind))

    def complete(self, sequence):
        with self.lock:
            contributions = self.posted.get(sequence, {})
            return dict(contributions) if len(contributions) == self.size else None


class Request:
    def __init__(self, job, sequence, finish):
        self.job, self.sequence, self.finish, self.done = job, sequence, finish, False

    def Test(self):
        if not self.done:
            contributions = self.job.complete(self.sequence)
            if contributions is not None:
                self.finish(contributions)
                self.done = True
        return self.done


class Comm:
    """One rank's view of the job: the non-blocking collectives minibng.distributed uses."""

    def __init__(self, job, rank):
        self.job, self.rank, self.sequence = job, rank, 0

    def _post(self, kind, value, finish):
        self.sequence += 1
        self.job.post(self.rank, self.sequence, kind, np.array(value, copy=True))
        return Request(self.job, self.sequence, finish)

    def Iallgather(self, send, receive):
        return self._post("allgather", send, lambda c: receive.__setitem__(
            Ellipsis, np.concatenate([c[r] for r in range(self.job.size)]).reshape(receive.shape)))

    def Ibcast(self, buffer, root=0):
        return self._post("bcast", buffer, lambda c: buffer.__setitem__(Ellipsis, c[root]))

    def Iallreduce(self, send, buffer, op=None):
        assert send is IN_PLACE
        return self._post("allreduce", buffer, lambda c: buffer.__setitem__(Ellipsis, sum(c.values())))


class MPI:
    IN_PLACE, SUM = IN_PLACE, "sum"

    def __init__(self, node):
        self.node = node

    def Get_processor_name(self):
        return self.node


def world(job, rank):
    """Rank ``rank``'s MPIWorld, built as MPIWorld.__init__ builds it but over the fake communicator."""
    w = distributed.MPIWorld.__new__(distributed.MPIWorld)
    w.mpi, w.comm = MPI(job.nodes[rank]), Comm(job, rank)
    w.rank, w.size, w.timeout, w._nccl = rank, job.size, 20.0, None
    w._place_on_gpus()
    return w


def run_ranks(size, body):
    """body(rank) on ``size`` threads at once; returns the results in rank order (re-raising a rank's error)."""
    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        return [f.result(timeout=60) for f in [pool.submit(body, r) for r in range(size)]]


class Stream:
    ptr, done = 7, True


class Nccl:
    """A fake cupy.cuda.nccl of one CuPy version; its communicators sum or copy buffers given by address."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 7, 8, 0

    def __init__(self, unique_id, id_type, size):
        self.unique_id, self.id_type = unique_id, id_type
        self.barrier, self.buffers, self.made = threading.Barrier(size), {}, {}
        nccl = self

        class NcclCommunicator:
            def __init__(self, ndev, commId, rank):
                if type(commId) is not nccl.id_type:   # Cython's typed argument: exactly that type
                    raise TypeError(f"Argument 'commId' has incorrect type (expected {nccl.id_type.__name__}, got "
                                    f"{type(commId).__name__})")
                if nccl.id_type is tuple:
                    lowest = -128 if min(nccl.unique_id) < 0 else 0
                    assert all(lowest <= c < lowest + 256 for c in commId), "a C char out of range: OverflowError"
                assert len(commId) == 128
                self.rank, nccl.made[rank] = rank, (ndev, commId)

            def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
                assert op == nccl.NCCL_SUM and stream == Stream.ptr and sendbuf == recvbuf
                nccl.exchange(self.rank, recvbuf, count, datatype, lambda arrays: sum(arrays))

            def bcast(self, buff, count, datatype, root, stream):
                assert stream == Stream.ptr
                nccl.exchange(self.rank, buff, count, datatype, lambda arrays: arrays[root].copy())

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        return self.unique_id

    def exchange(self, rank, address, count, datatype, combine):
        kind = ctypes.c_float if datatype == self.NCCL_FLOAT32 else ctypes.c_double
        self.buffers[rank] = np.ctypeslib.as_array((kind * count).from_address(address))
        self.barrier.wait()
        result = combine([self.buffers[r].copy() for r in sorted(self.buffers)])
        self.barrier.wait()
        self.buffers[rank][...] = result
        self.barrier.wait()


class FakeCupyArray(np.ndarray):
    """A NumPy array that says it is a CuPy array, with the ``data.ptr`` NCCL reads."""

    @property
    def data(self):
        return type("Pointer", (), {"ptr": self.__array_interface__["data"][0]})()


FakeCupyArray.__module__ = "cupy._core.core"
