"""Array-library selection, devices, transfers, random streams and the few ops that differ.

minibng runs the same layer and optimizer code on NumPy (CPU) and CuPy (GPU).  Code never swaps a global
library: it asks an array for its module with :func:`get_array_module` and uses that ``xp``.  This is the
only file of the package that knows CuPy exists.

Devices are strings: ``"cpu"``, ``"gpu"`` (the current CUDA device) and ``"gpu:N"``.
"""
from __future__ import annotations

import functools

import numpy

__all__ = [
    "get_array_module", "host_module", "cupy_or_none", "parse_device", "device_of", "to_device", "asnumpy",
    "manual_seed", "host_rng", "RandomStream", "scatter_add", "segment_sum", "segment_max_abs", "is_array",
    "array_library_name",
]

_CUPY_INSTALL_HINT = ("install CuPy for your CUDA version, e.g. `pip install \"minibng[gpu]\"` (cupy-cuda12x) "
                      "or `pip install cupy-cuda11x`")


@functools.lru_cache(maxsize=None)
def cupy_or_none():
    """The cupy module if it can be imported, else None (importing minibng never needs CuPy)."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    return cupy


def _is_cupy_array(a) -> bool:
    # Checked by type name first so that NumPy-only machines never import CuPy.
    return type(a).__module__.split(".")[0] == "cupy"


def is_array(a) -> bool:
    """True for a NumPy or CuPy ndarray."""
    return isinstance(a, numpy.ndarray) or _is_cupy_array(a)


def array_library_name(a) -> str:
    return "CuPy" if _is_cupy_array(a) else "NumPy"


def get_array_module(*arrays):
    """``numpy`` or ``cupy``, whichever the given arrays live in; mixing the two is a TypeError.

    Non-array arguments (Python scalars, None) are ignored.
    """
    on_host = on_gpu = False
    for a in arrays:  # the hot path of every layer: a plain NumPy array costs one check
        if type(a) is numpy.ndarray:
            on_host = True
        elif _is_cupy_array(a):
            on_gpu = True
        elif isinstance(a, numpy.ndarray):
            on_host = True
    if on_host and on_gpu:
        kinds = ", ".join(f"argument {i}: {array_library_name(a)}" for i, a in enumerate(arrays) if is_array(a))
        raise TypeError(f"mixed NumPy and CuPy arrays ({kinds}); move them to one device with .to(device)")
    return cupy_or_none() if on_gpu else numpy


def host_module():
    """``numpy``: the host array library, on which every layer builds its parameters and buffers before
    ``.to(device)`` moves them (so a seed gives the same model on every device).  Layers call this rather than
    importing NumPy themselves."""
    return numpy


def parse_device(device) -> tuple[str, int | None]:
    """``"cpu"`` -> ("cpu", None); ``"gpu"`` -> ("gpu", None); ``"gpu:1"`` -> ("gpu", 1)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', 'gpu' or 'gpu:0', got {device!r}")
    kind, _, index = device.partition(":")
    kind = "gpu" if kind == "cuda" else kind
    if (kind == "cpu" and not index) or (kind == "gpu" and (not index or index.isdigit())):
        return kind, int(index) if index else None
    raise ValueError(f"unknown device {device!r}; expected 'cpu', 'gpu' or 'gpu:N'")


def _require_gpu(index):
    cp = cupy_or_none()
    if cp is None:
        raise RuntimeError(f"device 'gpu' needs CuPy, which is not installed: {_CUPY_INSTALL_HINT}")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        raise RuntimeError(f"device 'gpu' needs a visible CUDA GPU, but CuPy found none ({e})") from e
    if count == 0:
        raise RuntimeError("device 'gpu' needs a visible CUDA GPU, but CuPy found none")
    if index is not None and index >= count:
        raise ValueError(f"device 'gpu:{index}' does not exist: {count} GPU(s) visible")
    return cp


def array_module_for(device):
    """The array library that serves ``device`` (raises a clear error for an unusable GPU)."""
    kind, index = parse_device(device)
    return numpy if kind == "cpu" else _require_gpu(index)


def device_of(a) -> str:
    """``"cpu"`` for a NumPy array, ``"gpu:N"`` for a CuPy array on device N."""
    return f"gpu:{a.device.id}" if _is_cupy_array(a) else "cpu"


def to_device(a, device):
    """A copy of ``a`` on ``device`` (the same array when it is already there)."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return asnumpy(a)
    cp = _require_gpu(index)
    if index is None:
        return cp.asarray(a)
    with cp.cuda.Device(index):
        return cp.asarray(a)


def asnumpy(a):
    """A NumPy array holding ``a`` (copied from the GPU when ``a`` is a CuPy array)."""
    if _is_cupy_array(a):
        return a.get()
    return numpy.asarray(a)


def scatter_add(target, indices, values):
    """``target[indices] += values`` for 1-D integer ``indices``, repeated indices accumulated.

    CuPy: ``add.at`` (atomic additions; CuPy ≥ 13).  NumPy: ``add.at`` runs one row at a time (~6 ms for the text
    CNN's 2,800 word vectors of 128), so the rows are sorted by index instead and each run of equal indices summed
    with ``add.reduceat`` before one indexed addition (~0.5 ms).
    """
    if _is_cupy_array(target):
        return cupy_or_none().add.at(target, indices, values)
    if len(indices) == 0:
        return
    order = numpy.argsort(indices, kind="stable")
    ordered = indices[order]
    starts = numpy.flatnonzero(numpy.concatenate(([True], ordered[1:] != ordered[:-1])))
    target[ordered[starts]] += numpy.add.reduceat(values[order], starts, axis=0)


def segment_sum(values, starts, out):
    """``out[i] = Σ values[starts[i] : starts[i + 1]]`` (the last segment runs to the end) for 1-D ``values`` and
    strictly increasing ``starts``.  ``out`` has the dtype of ``values`` or a wider one (float64 for float32 values).

    NumPy's ``add.reduceat`` (pairwise summation within each segment) in the dtype of ``values``.  On the GPU one
    thread block sums each segment directly, accumulating in the dtype of ``out``, in a fixed order (the same
    result on every run): CuPy 14.2's ``add.reduceat`` returned sums wrong from the 12th digit on, and NaN for a
    final one-element segment, in this project's GPU test run.
    """
    if not _is_cupy_array(values):
        out[...] = numpy.add.reduceat(values, starts)
        return out
    return _segment_reduce("sum", values, starts, out)


def segment_max_abs(values, starts, out, scratch):
    """``out[i] = max |values[starts[i] : starts[i + 1]]|``, NaN if the segment holds a NaN; ``scratch`` (the
    shape and dtype of ``values``) receives |values| on NumPy."""
    if not _is_cupy_array(values):
        out[...] = numpy.maximum.reduceat(numpy.abs(values, out=scratch), starts)
        return out
    return _segment_reduce("max_abs", values, starts, out)


def _segment_reduce(op, values, starts, out):
    cupy = cupy_or_none()
    if out.dtype.kind != "f" or out.itemsize < values.itemsize or not out.flags.c_contiguous or out.size != len(starts):
        raise TypeError(f"segment reductions: out must be a contiguous float array of {len(starts)} elements at "
                        f"least as wide as {values.dtype}, got {out.dtype} {out.shape}")
    kernel = _segment_kernel(op, values.dtype, out.dtype)
    values, starts = cupy.ascontiguousarray(values), cupy.ascontiguousarray(starts, dtype=cupy.int64)
    if len(starts):
        kernel((len(starts),), (_SEGMENT_THREADS,),
               (values, starts, numpy.int64(values.size), numpy.int64(len(starts)), out))
    return out


_SEGMENT_THREADS = 256
# One thread block per segment: each thread folds a strided slice, then a fixed-order tree folds the threads.
# T: the values' type; A: the accumulator's and out's type; COMBINE: + for sums, a NaN-propagating max for max_abs.
_SEGMENT_SOURCE = r"""
extern "C" __global__ void segment_reduce(const T* values, const long long* starts, const long long size,
                                          const long long segments, A* out) {
    __shared__ A partial[THREADS];
    const long long segment = blockIdx.x;
    const long long end = segment + 1 < segments ? starts[segment + 1] : size;
    A acc = 0;
    for (long long i = starts[segment] + threadIdx.x; i < end; i += THREADS) acc = COMBINE(acc, LOAD(values[i]));
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] = COMBINE(partial[threadIdx.x], partial[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) out[segment] = partial[0];
}
"""
_SEGMENT_OPS = {
    "sum": "#define LOAD(v) ((A)(v))\n#define COMBINE(a, b) ((a) + (b))\n",
    "max_abs": "#define LOAD(v) fabs((A)(v))\n#define COMBINE(a, b) ((a) > (b) || (a) != (a) ? (a) : (b))\n",
}
_segment_kernels = {}


def _segment_kernel(op, value_dtype, out_dtype):
    ctypes = {"float32": "float", "float64": "double"}
    value_type, out_type = ctypes.get(numpy.dtype(value_dtype).name), ctypes.get(numpy.dtype(out_dtype).name)
    if value_type is None or out_type is None:
        raise TypeError(f"segment reductions on the GPU take float32 or float64, got {value_dtype} -> {out_dtype}")
    key = op, value_type, out_type
    if key not in _segment_kernels:
        source = (f"typedef {value_type} T;\ntypedef {out_type} A;\n#define THREADS {_SEGMENT_THREADS}\n"
                  + _SEGMENT_OPS[op] + _SEGMENT_SOURCE)
        _segment_kernels[key] = cupy_or_none().RawKernel(source, "segment_reduce")
    return _segment_kernels[key]


# ---------------------------------------------------------------------------------------------------------------
# Randomness.  Initialization draws from one host NumPy Generator, so a seed gives the same model on CPU and GPU.
# Per-step randomness (dropout masks) comes from a RandomStream: a (seed, counter) pair that builds a fresh
# generator on the array's own device for every draw.  Its whole state is two integers, so a checkpoint saves it
# exactly and a resumed run draws the same masks.

_host_rng = numpy.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed the host generator that initializes every layer created afterwards (like ``torch.manual_seed``)."""
    global _host_rng
    _host_rng = numpy.random.default_rng(seed)


def host_rng(rng=None) -> numpy.random.Generator:
    """``rng`` if given (a Generator or an int seed), else the global host generator of :func:`manual_seed`."""
    if rng is None:
        return _host_rng
    if isinstance(rng, numpy.random.Generator):
        return rng
    return numpy.random.default_rng(rng)


class RandomStream:
    """A reproducible stream of random arrays made on whatever device the caller works on.

    Draw k uses a generator seeded with (seed, k), on NumPy or CuPy; ``state()`` is ``(seed, k)``.  Rank r > 0 of a
    data-parallel job (``RandomStream.rank``, set by :mod:`minibng.distributed`) seeds it with (seed, k, r) instead:
    every rank draws its own masks from the same saved state.
    """

    rank = 0

    def __init__(self, seed: int | None = None):
        self.seed = int(host_rng().integers(2**62)) if seed is None else int(seed)
        self.counter = 0

    def state(self) -> tuple[int, int]:
        return self.seed, self.counter

    def set_state(self, state) -> None:
        self.seed, self.counter = int(state[0]), int(state[1])

    def random(self, shape, xp, dtype):
        """Uniform [0, 1) samples of ``shape`` in ``dtype`` from ``xp``'s generator."""
        self.counter += 1
        key = [self.seed, self.counter] + ([self.rank] if self.rank else [])
        if xp is numpy:
            return numpy.random.default_rng(key).random(shape, dtype=dtype)
        seed = (self.seed * 1_000_003 + self.counter + self.rank * 2**40) % 2**63
        return xp.random.default_rng(seed).random(shape, dtype=dtype)
