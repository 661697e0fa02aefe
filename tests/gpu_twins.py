"""Host twins of the CUDA kernels in minibng/gpu: the same algorithms in NumPy, operation for operation and in the
same order, bit decoding included, so that a kernel's output must equal its twin's bit for bit on a GPU
(bench/gpu_check.sh compares them) while the tests here check each twin's arithmetic on any machine."""
import numpy as np

from minibng.gpu.kernels import THREADS, TILE

_UINT32 = 0xFFFFFFFF


def exact_double(values):
    """exact.cuh's ``exact_double``: each float32 decoded from its bits into a float64 (subnormal numbers kept)."""
    values = np.asarray(values)
    if values.dtype == np.float64:
        return values.copy()
    bits = values.view(np.uint32).astype(np.uint64)
    exponent, mantissa = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    rebiased = (np.where(exponent == 0xFF, 0x7FF, exponent + 896) << 52) | (mantissa << 29)
    magnitude = np.where(exponent == 0, mantissa.astype(np.float64) * 2.0 ** -149, rebiased.view(np.float64))
    return np.where(bits >> 31 == 1, -magnitude, magnitude)


def stored(values, dtype):
    """exact.cuh's ``store``: float64 results rounded once to ``dtype``, a float32 subnormal result by hand."""
    values = np.asarray(values, dtype=np.float64)
    if np.dtype(dtype) == np.float64:
        return values.copy()
    magnitude = np.abs(values)
    small = magnitude < 2.0 ** -126
    units = np.rint(np.where(small, magnitude, 0.0) * 2.0 ** 149).astype(np.uint32)
    subnormal = ((np.signbit(values).astype(np.uint32) << 31) | units).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, subnormal, values.astype(np.float32))


def _combine(op):
    if op == "max_abs":
        return lambda a, b: np.where((a > b) | np.isnan(a), a, b)   # NaN wins, as the kernel's a > b || a != a
    return np.add


def _load(op, values, scale):
    x = exact_double(values)
    if op == "sum":
        return x
    if op == "max_abs":
        return np.abs(x)
    scaled = x * scale
    return scaled * scaled


def fold(loaded, op):
    """One thread block: thread t folds entries t, t + THREADS, … in order from 0, then a tree folds the threads."""
    combine, acc = _combine(op), np.zeros(THREADS)
    for row in range(0, len(loaded), THREADS):
        chunk = loaded[row:row + THREADS]
        acc[:len(chunk)] = combine(acc[:len(chunk)], chunk)
    half = THREADS // 2
    while half:
        acc[:half] = combine(acc[:half], acc[half:2 * half])
        half //= 2
    return acc[0]


def segment_reduce(op, values, sizes, scales=None):
    """segments.cu's two-level reduction: ranges of TILE entries folded, then each segment's partial results."""
    out, start = [], 0
    for i, n in enumerate(sizes):
        loaded = _load(op, values[start:start + n], 1.0 if scales is None else scales[i])
        partials = np.array([fold(loaded[k:k + TILE], op) for k in range(0, max(n, 1), TILE)])
        out.append(fold(partials, "sum" if op != "max_abs" else op))
        start += n
    return np.array(out)


def scale_blocks(values, divisor, multiplier, block_ids):
    """segments.cu's ``scale_*``: (v_j / divisor_b) · multiplier_b in float64, stored in v's dtype."""
    return stored(exact_double(values) / divisor[block_ids] * multiplier[block_ids], values.dtype)


def philox4x32_10(counter, key):
    """Philox4x32-10 of counter words (4 arrays of uint32) under a key of two 32-bit words."""
    c = [np.asarray(w, dtype=np.uint64) for w in counter]
    k0, k1, mask = np.uint64(key[0]), np.uint64(key[1]), np.uint64(_UINT32)
    for round_ in range(10):
        if round_:   # the key schedule: Weyl sequences
            k0, k1 = (k0 + np.uint64(0x9E3779B9)) & mask, (k1 + np.uint64(0xBB67AE85)) & mask
        p0, p1 = np.uint64(0xD2511F53) * c[0], np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & np.uint64(_UINT32), (p0 >> np.uint64(32)) ^ c[3] ^ k1,
             p0 & np.uint64(_UINT32)]
    return [w.astype(np.uint32) for w in c]


def uniform(size, dtype, key):
    """philox.cu's ``uniform_*``: block k = Philox(k) holds entries 4k … 4k + 3 (float32) or 2k, 2k + 1 (float64)."""
    per_block = 4 if np.dtype(dtype) == np.float32 else 2
    k = np.arange(-(-size // per_block), dtype=np.uint64)
    words = philox4x32_10([k & np.uint64(_UINT32), k >> np.uint64(32), np.zeros_like(k), np.zeros_like(k)], key)
    if per_block == 4:
        return (np.stack(words, axis=1).ravel()[:size] >> 8).astype(np.float32) * np.float32(2.0 ** -24)
    pairs = [(words[0], words[1]), (words[2], words[3])]
    values = [((a >> 5).astype(np.float64) * 2.0 ** 26 + (b >> 6).astype(np.float64)) * 2.0 ** -53 for a, b in pairs]
    return np.stack(values, axis=1).ravel()[:size]


def scatter_add(target, indices, values):
    """scatter.cu: the rows of each index in their order, summed in float64, then added to ``target`` once."""
    target, rows = target.copy(), values.reshape(len(indices), -1)
    flat = target.reshape(target.shape[0], -1)
    order = np.argsort(indices, kind="stable")
    for index in np.unique(indices):
        run = exact_double(rows[order[indices[order] == index]])
        total = run[0].copy()
        for row in run[1:]:
            total = total + row
        flat[index] = stored(exact_double(flat[index]) + total, target.dtype)
    return target
