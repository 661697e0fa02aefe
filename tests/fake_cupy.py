"""A stand-in for CuPy on a machine without a GPU, for minibng.gpu.kernels' launches: NumPy, plus a RawModule whose
kernels run on the host, reading each launch's grid and arguments in the order the .cu file declares them and
computing with the host twins (tests/gpu_twins.py).  A launch that passes its arguments in another order, leaves
entries outside its grid, or names a kernel its source lacks, fails here as it would on a GPU."""
import re
import sys
import types

import numpy as np

import gpu_twins
from minibng.gpu.kernels import THREADS

TYPES = {"float": np.float32, "double": np.float64}


def _covered(grid, block, entries, per_thread=1):
    assert block == (THREADS,), block
    assert grid[0] * THREADS * per_thread >= entries > (grid[0] - 1) * THREADS * per_thread, (grid, entries)


def _reduction(op, dtype):
    def launch(grid, block, args):
        values, begin, end, segment_of, scales, out = args
        assert block == (THREADS,) and values.dtype == dtype and out.dtype == np.float64
        assert grid[0] == len(begin) == len(end) == len(segment_of) == out.size
        for r in range(grid[0]):
            scale = scales[segment_of[r]] if op == "sum_of_squares" else 1.0   # as the kernel: read only there
            loaded = gpu_twins._load(op, values[begin[r]:end[r]], scale)
            out[r] = gpu_twins.fold(loaded, op)
    return launch


def _scale(dtype):
    def launch(grid, block, args):
        values, block_of, divisor, multiplier, size, out = args
        assert values.dtype == out.dtype == dtype and size == values.size
        _covered(grid, block, int(size))
        out[...] = gpu_twins.scale_blocks(values, divisor, multiplier, block_of)
    return launch


def _uniform(dtype):
    def launch(grid, block, args):
        out, size, k0, k1 = args
        assert out.dtype == dtype and size == out.size
        _covered(grid, block, -(-int(size) // (4 if dtype == np.float32 else 2)))
        out[...] = gpu_twins.uniform(int(size), dtype, (int(k0), int(k1)))
    return launch


def _scatter(dtype):
    def launch(grid, block, args):
        sorted_ids, order, values, rows, columns, target = args
        assert values.dtype == target.dtype == dtype and values.shape == (rows, columns)
        _covered(grid, block, int(rows * columns))
        flat = target.reshape(-1, int(columns))
        for r in range(int(rows)):
            if r == 0 or sorted_ids[r - 1] != sorted_ids[r]:
                run = gpu_twins.exact_double(values[order[r:][sorted_ids[r:] == sorted_ids[r]]])
                total = run[0].copy()
                for row in run[1:]:
                    total = total + row
                flat[sorted_ids[r]] = gpu_twins.stored(gpu_twins.exact_double(flat[sorted_ids[r]]) + total, dtype)
    return launch


def _launcher(name):
    kind, _, type_name = name.rpartition("_")
    dtype = TYPES[type_name]
    if kind in ("sum", "sum_of_squares", "max_abs"):
        return _reduction(kind, dtype)
    return {"scale": _scale, "uniform": _uniform, "add_sorted_runs": _scatter}[kind](dtype)


class RawModule:
    def __init__(self, code):
        self.code = code

    def get_function(self, name):
        declared = rf'extern "C" __global__ void {name}\(|^[A-Z]+\({name}, '    # written out, or by a macro
        assert re.search(declared, self.code, re.M), f"no kernel {name} in the source"
        return _launcher(name)


def module():
    """A module named cupy: NumPy's functions and RawModule."""
    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)
    fake.RawModule = RawModule
    return fake


def install(monkeypatch=None):
    """Make ``import cupy`` give the stand-in (through ``monkeypatch`` in a test, for good in a dry run)."""
    if monkeypatch is None:
        sys.modules["cupy"] = module()
    else:
        monkeypatch.setitem(sys.modules, "cupy", module())
