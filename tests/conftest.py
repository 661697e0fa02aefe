"""Shared test configuration: Hypothesis profiles and the device fixture.

HYPOTHESIS_PROFILE=ci   bounded examples, no deadline, derandomized (what CI runs)
HYPOTHESIS_PROFILE=dev  more examples (the default)
MINIBNG_TEST_DEVICE=gpu every test that takes ``device`` runs on CuPy as well as on NumPy ("gpu:N": on GPU N,
                        which is made CuPy's current device for the whole run)
"""
import os

import pytest
from hypothesis import HealthCheck, settings

_quiet = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True, suppress_health_check=_quiet,
                          print_blob=True)
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=_quiet)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

TEST_DEVICE = os.environ.get("MINIBNG_TEST_DEVICE", "cpu").strip()
DEVICES = ["cpu"] + ([TEST_DEVICE] if TEST_DEVICE.startswith("gpu") else [])
if TEST_DEVICE.startswith("gpu:"):   # arrays on GPU N need N current: CuPy launches kernels on the current GPU
    from minibng import backend, gpu

    gpu.use_device(backend.parse_device(TEST_DEVICE)[1])


@pytest.fixture(params=DEVICES)
def device(request):
    """The device a test body runs on: "cpu", and MINIBNG_TEST_DEVICE ("gpu" or "gpu:N") too when it names a GPU."""
    return request.param


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A working directory and environment in which no data root holds anything: only what the test places."""
    from minibng.data import checksums, root

    monkeypatch.delenv("MINIBNG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(root, "SYSTEM_ROOTS", ())
    monkeypatch.chdir(tmp_path)
    checksums._verified.clear()
    return tmp_path


@pytest.fixture(params=["host", "device-branch"])
def partition_path(request, monkeypatch):
    """Run a test twice: as NumPy runs the optimizer, and through the branch of ``optim.Partition`` that CuPy takes
    (no host-side checks, always the exact norms and the float64 ratios, the gather by block id), on NumPy arrays:
    so the GPU's code path is tested on every machine."""
    if request.param == "device-branch":
        from minibng.optim.partition import Partition

        original = Partition.__init__

        def device_branch(self, *args, **kwargs):
            original(self, *args, **kwargs)
            self.on_host = False
            self.block_ids = self.xp.repeat(self.xp.arange(len(self.sizes)), self.sizes)

        monkeypatch.setattr(Partition, "__init__", device_branch)
    return request.param
