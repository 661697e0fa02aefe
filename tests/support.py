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


MPI_INSTALL = "pip install -e \".[mpi]\" (mpi4py and the mpich wheel, which brings mpiexec)"
_MPI_ENV_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "MV2_", "HYDRA_")


def mpiexec_or_skip():
    """[mpiexec, its options] for this machine; skips the test (saying what to install) without mpi4py or mpiexec.

    Open MPI needs --oversubscribe to start more ranks than cores, and --allow-run-as-root in CI containers; MPICH
    needs neither (minibng's collectives sleep while they wait, so ranks share a small machine well)."""
    import importlib.util
    import os
    import shutil
    import subprocess
    import sys

    import pytest

    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    program = shutil.which("mpiexec", path=path)
    if importlib.util.find_spec("mpi4py") is None or program is None:
        pytest.skip(f"MPI is not installed: {MPI_INSTALL}")
    version = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30).stdout
    options = []
    if "Open MPI" in version or "OpenRTE" in version:
        options = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return [program, *options]


def mpi_environment():
    """The environment of an MPI job started by a test: this process's, without its MPI variables, one thread per
    rank, and a 60 s MINIBNG_MPI_TIMEOUT (far below the 90 s a test waits)."""
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith(_MPI_ENV_PREFIXES)}
    environment.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                        "MINIBNG_MPI_TIMEOUT": "60"})
    return environment


def mpiexec(ranks, timeout=90, env=None):
    """Run an MPI job and return (exit status, stdout, stderr, seconds).

    ``ranks``: the command of every rank (a list of program arguments after ``python``), or (working folder,
    arguments) pairs, one rank each (MPMD: ``mpiexec -n 1 -wdir A … : -n 1 -wdir B …``).  One thread per rank; the
    MPI variables of the calling process are not passed on; the job is killed (whole process group) past ``timeout``
    and the test fails."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = mpiexec_or_skip()
    for i, rank in enumerate(ranks):
        folder, args = rank if isinstance(rank, tuple) else (None, rank)
        command += ([":"] if i else []) + ["-n", "1"] + (["-wdir", str(folder)] if folder else [])
        command += [sys.executable, *map(str, args)]
    environment = {**mpi_environment(), **(env or {})}
    start = time.monotonic()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                           start_new_session=True)
    try:
        out, err = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        out, err = job.communicate()
        raise AssertionError(f"mpiexec ran past {timeout} s (a hang):\n{' '.join(command)}\n{out[-2000:]}\n"
                             f"{err[-3000:]}")
    return job.returncode, out, err, time.monotonic() - start
