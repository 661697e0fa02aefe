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
