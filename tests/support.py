"""Helpers for tests: device arrays, random values and a float64 copy of a module."""
import numpy as np

from minibng import backend


def on(device, a):
    """``a`` (a host array) on ``device``."""
    return backend.to_device(np.asarray(a), device)


def host(a):
    return backend.asnumpy(a)


def randn(rng, *shape, dtype=np.float64, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def as_device_module(module, device, dtype=np.float64):
    """``module`` cast to ``dtype`` and moved to ``device``."""
    return module.astype(dtype).to(device)


def _extent(a):
    base = a.data.ptr if hasattr(a.data, "ptr") else a.__array_interface__["data"][0]
    return base, base + a.nbytes


def aliases(a, b):
    """True when the memory of arrays ``a`` and ``b`` overlaps (a conservative test on byte ranges)."""
    if a is None or b is None or a.nbytes == 0 or b.nbytes == 0:
        return False
    (a0, a1), (b0, b1) = _extent(a), _extent(b)
    return a0 < b1 and b0 < a1


def run_forward_backward(module, x, dy_seed=0):
    """y = module(x); dx = module.backward(dy) with a random dy; returns (y, dy, dx), checking purity on the way:
    neither x nor dy is modified, and neither output aliases an input."""
    xp = backend.get_array_module(x)
    x_before = x.copy()
    y = module(x)
    dy = xp.asarray(np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype))
    dy_before = dy.copy()
    dx = module.backward(dy)
    assert not aliases(y, x), f"{type(module).__name__}.forward returned an array aliasing its input"
    assert not aliases(dx, dy), f"{type(module).__name__}.backward returned an array aliasing dy"
    np.testing.assert_array_equal(host(x), host(x_before), err_msg="forward modified its input")
    np.testing.assert_array_equal(host(dy), host(dy_before), err_msg="backward modified dy")
    return y, dy, dx


def real_data_root(needs="mnist", variable="MINIBNG_TEST_DATA", default=None):
    """The folder holding the real data set ``needs``/: ``$variable``, else ``default``, else ../shared/data beside
    the repository.  Where it is missing, the test skips, saying how to provide it; with MINIBNG_REQUIRE_DATA=1 (as
    CI sets it) it fails instead."""
    import os
    from pathlib import Path

    import pytest

    folder = Path(os.environ.get(variable) or default or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (folder / needs).is_dir():
        message = (f"real data missing: {folder / needs} does not exist; set {variable} to the folder holding "
                   f"{needs}/ (docs/data.md says where to get each data set)")
        if os.environ.get("MINIBNG_REQUIRE_DATA", "") not in ("", "0"):
            pytest.fail(message + "; MINIBNG_REQUIRE_DATA is set, so this test may not skip")
        pytest.skip(message)
    return folder


def metrics_rows(path):
    """The lines of a metrics CSV without its last column, ``seconds`` (wall time differs between runs)."""
    from pathlib import Path

    return [line.rsplit(",", 1)[0] for line in Path(path).read_text().splitlines()]
