"""The GPU half of :mod:`minibng.backend`: the CUDA kernels (``*.cu`` beside this file, launched by
:mod:`minibng.gpu.kernels`), and the devices, streams and NCCL that :mod:`minibng.distributed` uses.  With
backend.py, this package is the only code of minibng that knows CuPy exists; nothing here is imported on a
NumPy-only run, and nothing here is called with NumPy arrays."""
from __future__ import annotations


def nccl_or_none():
    """``cupy.cuda.nccl`` where CuPy was built with NCCL and finds its library, else None."""
    try:
        from cupy.cuda import nccl  # noqa: PLC0415 - GPU runs only
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", True) else None


def current_stream():
    """The CUDA stream CuPy queues work on now (``.ptr`` for NCCL, ``.done`` to poll)."""
    import cupy  # noqa: PLC0415

    return cupy.cuda.get_current_stream()
