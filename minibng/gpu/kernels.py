"""Launches of the CUDA kernels in this folder: segment reductions and the per-block scale (segments.cu), uniform
draws (philox.cu) and a deterministic scatter-add (scatter.cu).  Each file is compiled by CuPy (NVRTC) on first use.

A segment reduction runs in two levels so that a long segment (a ``global`` partition, a large embedding) is
spread over the whole GPU: level 1 folds ranges of at most ``TILE`` entries, one thread block each, into float64
partial results; level 2 folds each segment's partial results (one thread block per segment).  Where every segment
fits one range, level 1 writes the results directly.  Both levels fold in a fixed order: the same result every run.
"""
from __future__ import annotations

import functools
import pathlib

import numpy

THREADS = 256           # threads per block: the kernels' THREADS
TILE = 32 * THREADS     # the most entries one thread block folds in level 1
_TYPE_NAMES = {"float32": "float", "float64": "double"}


class Segments:
    """B consecutive segments of a flat vector, of sizes d_1 … d_B (Python ints), for the segment reductions:
    ``starts`` (B,) where each begins; on the GPU also the level-1 ranges (``begin``, ``end``, ``segment_of``),
    each segment's ranges ``first`` … ``last`` − 1 among them, and for level 2, whose range i is segment i, ``each``
    (0 … B − 1) and ``ones`` (B,), the scales of a plain sum."""

    def __init__(self, sizes, xp):
        self.sizes = numpy.asarray(sizes, dtype=numpy.int64)
        self.count, starts = len(self.sizes), numpy.cumsum(self.sizes) - self.sizes
        self.starts = xp.asarray(starts)
        if xp is numpy:
            return
        ranges = numpy.maximum(1, -(-self.sizes // TILE))          # an empty segment still gets one (empty) range
        segment_of = numpy.repeat(numpy.arange(self.count), ranges)
        first = numpy.cumsum(ranges) - ranges
        begin = starts[segment_of] + (numpy.arange(ranges.sum()) - first[segment_of]) * TILE
        end = numpy.minimum(begin + TILE, (starts + self.sizes)[segment_of])
        self.begin, self.end, self.segment_of, self.first, self.last = (
            xp.asarray(a, dtype=xp.int64) for a in (begin, end, segment_of, first, first + ranges))
        self.ranges, self.ones = int(ranges.sum()), xp.ones(self.count)
        self.each = xp.arange(self.count, dtype=xp.int64)


def _type_name(dtype, what):
    name = _TYPE_NAMES.get(numpy.dtype(dtype).name)
    if name is None:
        raise TypeError(f"{what} on the GPU: float32 or float64 arrays only, got {numpy.dtype(dtype)}")
    return name


def source_code(name):
    """The CUDA code of ``name``.cu as compiled: its ``#include "exact.cuh"`` replaced by that file's text (CuPy's
    cache of compiled kernels is keyed by the code, so an edit of either file recompiles)."""
    folder = pathlib.Path(__file__).parent
    header = (folder / "exact.cuh").read_text(encoding="utf-8")
    return (folder / f"{name}.cu").read_text(encoding="utf-8").replace('#include "exact.cuh"', header)


@functools.lru_cache(maxsize=None)
def _module(name):
    import cupy  # noqa: PLC0415 - called with CuPy arrays only

    return cupy.RawModule(code=source_code(name))


def _kernel(source, name):
    return _module(source).get_function(name)


def segment_reduce(op, values, segments, out, scales=None):
    """``out[i]`` (float64) = Σ v, Σ (scales_i · v)² or max |v| (NaN wins) over segment i, by ``op`` = "sum",
    "sum_of_squares" or "max_abs"; float32 values are decoded from their bits (subnormal numbers kept)."""
    import cupy  # noqa: PLC0415

    if out.dtype != numpy.float64 or not out.flags.c_contiguous or out.size != segments.count:
        raise TypeError(f"segment reductions on the GPU write a contiguous float64 array of {segments.count} "
                        f"elements, got {out.dtype} {out.shape}")
    kind = _type_name(values.dtype, "segment reductions")
    values = cupy.ascontiguousarray(values)
    scales = segments.ones if scales is None else cupy.ascontiguousarray(scales, dtype=numpy.float64)
    in_one_level = segments.ranges == segments.count
    partial = out if in_one_level else cupy.empty(segments.ranges, numpy.float64)
    if segments.count:
        _kernel("segments", f"{op}_{kind}")((segments.ranges,), (THREADS,), (
            values, segments.begin, segments.end, segments.segment_of, scales, partial))
    if not in_one_level:
        fold = "max_abs_double" if op == "max_abs" else "sum_double"
        _kernel("segments", fold)((segments.count,), (THREADS,), (
            partial, segments.first, segments.last, segments.each, segments.ones, out))
    return out


def scale_blocks(values, divisor, multiplier, block_of, out):
    """``out_j`` = (v_j / divisor_b) · multiplier_b in float64 for the block b = ``block_of[j]``, rounded once to
    the dtype of ``out`` (float32 subnormal numbers kept, in and out); ``out`` may be ``values``."""
    import cupy  # noqa: PLC0415

    kind = _type_name(values.dtype, "Partition.scale")
    if out.dtype != values.dtype or not (values.flags.c_contiguous and out.flags.c_contiguous):
        raise TypeError(f"Partition.scale on the GPU: out must be contiguous like v ({values.dtype}), got {out.dtype}")
    divisor = cupy.ascontiguousarray(divisor, dtype=numpy.float64)
    multiplier = cupy.ascontiguousarray(multiplier, dtype=numpy.float64)
    if values.size:
        _kernel("segments", f"scale_{kind}")((-(-values.size // THREADS),), (THREADS,), (
            values, block_of, divisor, multiplier, numpy.int64(values.size), out))
    return out


def uniform(shape, dtype, key):
    """Uniform [0, 1) numbers of ``shape`` in ``dtype``: Philox4x32-10 under ``key`` (two 32-bit words), block k of
    the stream holding entries 4k … 4k + 3 (float32: 24 bits each) or 2k, 2k + 1 (float64: 53 bits each)."""
    import cupy  # noqa: PLC0415

    kind = _type_name(dtype, "random draws")
    out = cupy.empty(int(numpy.prod(shape, dtype=numpy.int64)), dtype)
    blocks = -(-out.size // (4 if kind == "float" else 2))
    if blocks:
        _kernel("philox", f"uniform_{kind}")((-(-blocks // THREADS),), (THREADS,), (
            out, numpy.int64(out.size), numpy.uint32(key[0]), numpy.uint32(key[1])))
    return out.reshape(shape)


def scatter_add(target, indices, values):
    """``target[indices] += values`` with repeated indices summed in a fixed order (no atomics): the rows of each
    index, in the order they come, summed in float64, then added to its row of ``target`` once."""
    import cupy  # noqa: PLC0415

    kind = _type_name(target.dtype, "scatter_add")
    if values.dtype != target.dtype or not target.flags.c_contiguous:
        raise TypeError(f"scatter_add on the GPU: a contiguous target and values of its dtype ({target.dtype}), "
                        f"got {values.dtype}")
    rows, columns = len(indices), int(numpy.prod(target.shape[1:], dtype=numpy.int64))
    order = cupy.argsort(indices, kind="stable")
    sorted_ids = cupy.ascontiguousarray(indices[order], dtype=numpy.int64)
    values = cupy.ascontiguousarray(values.reshape(rows, columns))
    if rows * columns:
        _kernel("scatter", f"add_sorted_runs_{kind}")((-(-rows * columns // THREADS),), (THREADS,), (
            sorted_ids, order.astype(numpy.int64), values, numpy.int64(rows), numpy.int64(columns), target))
    return target
