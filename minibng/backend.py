"""Array-library selection, devices, transfers, random streams and the few ops that differ.

minibng runs the same layer and optimizer code on NumPy (CPU) and CuPy (GPU).  Code never swaps a global
library: it asks an array for its module with :func:`get_array_module` and uses that ``xp``.  This file and the
package :mod:`minibng.gpu` (the CUDA kernels launched from here, and the devices and NCCL that
:mod:`minibng.distributed` uses) are the only code of minibng that knows CuPy exists.

Devices are strings: ``"cpu"``, ``"gpu"`` (the current CUDA device) and ``"gpu:N"``.
"""
from __future__ import annotations

import contextlib
import functools

import numpy

from .gpu import kernels
from .gpu.kernels import Segments

__all__ = [
    "get_array_module", "host_module", "cupy_or_none", "parse_device", "device_of", "to_device", "asnumpy",
    "manual_seed", "host_rng", "RandomStream", "scatter_add", "Segments", "segment_sum", "segment_sum_of_squares",
    "segment_max_abs", "scale_blocks", "is_array", "array_library_name", "errors_ignored",
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


def errors_ignored(xp, *kinds):
    """A context in which ``xp`` does not warn of the floating-point ``kinds`` ("over", "under", "divide",
    "invalid"; all four when none is named): for code that detects and handles those results itself, or makes them
    on purpose.  NumPy's ``errstate``; CuPy warns of none, so there it is a context that does nothing."""
    if not hasattr(xp, "errstate"):
        return contextlib.nullcontext()
    return xp.errstate(**{kind: "ignore" for kind in kinds or ("over", "under", "divide", "invalid")})


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

    NumPy: ``add.at`` runs one row at a time (~6 ms for the text CNN's 2,800 word vectors of 128), so the rows are
    sorted by index instead and each run of equal indices summed with ``add.reduceat`` before one indexed addition
    (~0.5 ms).  CuPy: the same sorted runs, each summed in float64 by one thread (``cupy.add.at``'s atomic additions
    would sum repeated indices in a different order on every run).
    """
    if _is_cupy_array(target):
        return kernels.scatter_add(target, indices, values)
    if len(indices) == 0:
        return
    order = numpy.argsort(indices, kind="stable")
    ordered = indices[order]
    starts = numpy.flatnonzero(numpy.concatenate(([True], ordered[1:] != ordered[:-1])))
    target[ordered[starts]] += numpy.add.reduceat(values[order], starts, axis=0)


# Segment arithmetic for optim.Partition: ``segments`` is a Segments (the starts, and the GPU's launch layout).
# On the GPU, float32 values are decoded from their bits (minibng/gpu/exact.cuh), results are float64, and every
# reduction folds in a fixed order: the same result on every run.  (CuPy 14.2's ``add.reduceat`` returned sums
# wrong from the 12th digit on, and NaN for a final one-element segment, in this project's GPU test run.)

def segment_sum(values, segments, out):
    """``out[i] = Σ_j v_j`` over segment i: ``add.reduceat`` (pairwise) in the dtype of ``values`` on NumPy, into an
    ``out`` of that dtype or a wider one; on the GPU, summed in float64 (``out`` float64)."""
    if _is_cupy_array(values):
        return kernels.segment_reduce("sum", values, segments, out)
    out[...] = numpy.add.reduceat(values, segments.starts)
    return out


def segment_sum_of_squares(values, segments, out, scales=None):
    """``out[i] = Σ_j (s_i v_j)²`` over segment i, in float64 (``out`` float64; s_i = ``scales[i]``, default 1):
    every square of a float32 value is exact, subnormal values included."""
    if _is_cupy_array(values):
        return kernels.segment_reduce("sum_of_squares", values, segments, out, scales)
    wide = values.astype(numpy.float64)
    if scales is not None:
        wide *= numpy.repeat(scales, segments.sizes)
    out[...] = numpy.add.reduceat(numpy.square(wide, out=wide), segments.starts)
    return out


def segment_max_abs(values, segments, out, scratch):
    """``out[i] = max_j |v_j|`` over segment i, NaN if it holds a NaN; ``scratch`` (the shape and dtype of
    ``values``) receives |values| on NumPy; on the GPU ``out`` is float64."""
    if _is_cupy_array(values):
        return kernels.segment_reduce("max_abs", values, segments, out)
    out[...] = numpy.maximum.reduceat(numpy.abs(values, out=scratch), segments.starts)
    return out


def scale_blocks(values, divisor, multiplier, block_ids, out):
    """``out_j = (v_j / divisor_b) · multiplier_b`` for the block b = ``block_ids[j]`` of every coordinate j, formed
    in float64 and rounded once to the dtype of ``out`` (float32 subnormal numbers kept on the GPU too)."""
    if _is_cupy_array(values):
        return kernels.scale_blocks(values, divisor, multiplier, block_ids, out)
    return numpy.multiply(numpy.divide(values, divisor[block_ids]), multiplier[block_ids], out=out)


# ---------------------------------------------------------------------------------------------------------------
# Randomness.  Initialization draws from one host NumPy Generator, so a seed gives the same model on CPU and GPU.
# Per-step randomness (dropout masks) comes from a RandomStream: a (seed, counter) pair from which every draw derives
# its own generator on the array's own device.  Its whole state is two integers, so a checkpoint saves it exactly
# and a resumed run draws the same masks.

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

    Draw k is keyed by NumPy's seed sequence of (seed, k), or of (seed, k, r) on rank r > 0 of a data-parallel job
    (``RandomStream.rank``, set by :mod:`minibng.distributed`), so every rank draws its own masks from the same saved
    state.  On NumPy that sequence seeds a PCG64 generator (``numpy.random.default_rng``); on the GPU two 32-bit
    words of it key a Philox4x32-10 stream (:func:`minibng.gpu.kernels.uniform`), which needs no generator state on
    the device.  Distinct (seed, k, r) give distinct streams (the sequence hashes all three).  ``state()`` is
    ``(seed, k)``.
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
        sequence = numpy.random.SeedSequence([self.seed, self.counter] + ([self.rank] if self.rank else []))
        if xp is numpy:
            return numpy.random.Generator(numpy.random.PCG64(sequence)).random(shape, dtype=dtype)
        return kernels.uniform(shape, dtype, sequence.generate_state(2))
