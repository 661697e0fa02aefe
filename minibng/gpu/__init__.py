"""The GPU half of :mod:`minibng.backend`: the CUDA kernels (``*.cu`` beside this file, launched by
:mod:`minibng.gpu.kernels`), and the devices, streams and NCCL that :mod:`minibng.distributed` uses.  With
backend.py, this package is the only code of minibng that knows CuPy exists; it imports CuPy only when called,
which a NumPy-only run never does."""
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


def device_count() -> int:
    """How many CUDA GPUs CuPy sees: 0 without CuPy, without a usable driver, or without a GPU."""
    from ..backend import cupy_or_none  # noqa: PLC0415 - backend imports this package

    cupy = cupy_or_none()
    try:
        return cupy.cuda.runtime.getDeviceCount() if cupy is not None else 0
    except Exception:  # a CuPy without a usable driver: a CPU run
        return 0


def pci_bus_id(index: int) -> str:
    """The PCI bus id of GPU ``index`` as this process numbers it ("0000:3B:00.0"): what tells two GPUs of a node
    apart whatever CUDA_VISIBLE_DEVICES made of their numbers, and what NCCL compares to refuse two ranks on one."""
    from ..backend import cupy_or_none  # noqa: PLC0415

    return cupy_or_none().cuda.runtime.deviceGetPCIBusId(index)


def use_device(index: int) -> None:
    """Make GPU ``index`` the one CuPy works on (what the device string "gpu" names from now on)."""
    from ..backend import cupy_or_none  # noqa: PLC0415

    cupy_or_none().cuda.Device(index).use()
