"""Every CUDA source of the project compiles with NVRTC as CuPy compiles it (CuPy 13.6 and 14.2's options for a
RawModule: -std=c++17, -ftz=true appended after any option of ours, -arch=compute_XX,
--device-as-default-execution-space), for Turing (7.5) and Hopper (9.0), without a GPU and without a warning.  And
the kernels that promise exact float32 arithmetic let -ftz=true touch no float32 they read.

NVRTC comes from the nvidia-cuda-nvrtc-cu12 wheel (pip install -e ".[nvrtc]"); without it these tests skip, and fail
where MINIBNG_REQUIRE_NVRTC=1 (as CI sets it)."""
import ctypes
import ctypes.util
import glob
import os
import pathlib
import re

import pytest

from minibng.gpu import kernels

SOURCES = sorted(p.stem for p in pathlib.Path(kernels.__file__).parent.glob("*.cu"))
ARCHITECTURES = ["compute_75", "compute_90"]
CUPY_OPTIONS = ["-std=c++17", "-ftz=true", "--device-as-default-execution-space"]


@pytest.fixture(scope="module")
def nvrtc():
    paths = []
    try:
        import nvidia.cuda_nvrtc as wheel
        paths = [p for folder in wheel.__path__ for p in sorted(glob.glob(os.path.join(folder, "lib", "libnvrtc.so*")))
                 if "builtins" not in p and ".alt." not in p]
    except ImportError:
        pass
    paths += [p for p in [ctypes.util.find_library("nvrtc")] if p]
    if not paths:
        message = 'NVRTC is not installed: pip install -e ".[nvrtc]" (the nvidia-cuda-nvrtc-cu12 wheel)'
        if os.environ.get("MINIBNG_REQUIRE_NVRTC", "") not in ("", "0"):
            pytest.fail(message + "; MINIBNG_REQUIRE_NVRTC is set, so these tests may not skip")
        pytest.skip(message)
    return ctypes.CDLL(paths[0])


def compile_ptx(nvrtc, code, options):
    """(status, log, PTX) of NVRTC on ``code`` with ``options``."""
    program, size = ctypes.c_void_p(), ctypes.c_size_t()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"kernel.cu", 0, None, None) == 0
    try:
        status = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(
            *[o.encode() for o in options]))
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetProgramLog(program, log)
        ptx = b""
        if status == 0:
            nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size))
            buffer = ctypes.create_string_buffer(size.value)
            nvrtc.nvrtcGetPTX(program, buffer)
            ptx = buffer.value
        return status, log.value.decode(errors="replace"), ptx.decode()
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def test_a_warning_or_an_error_is_caught(nvrtc):
    """The checks below can fail: NVRTC reports an unused variable as a warning and a type error as an error."""
    status, log, _ = compile_ptx(nvrtc, "__global__ void k(int* a) { int unused; a[0] = 1; }", CUPY_OPTIONS)
    assert status == 0 and "warning" in log
    status, log, _ = compile_ptx(nvrtc, "__global__ void k(int* a) { a[0] = undeclared; }", CUPY_OPTIONS)
    assert status != 0 and "error" in log


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("source", SOURCES)
def test_every_cuda_source_compiles_without_a_warning(nvrtc, source, architecture):
    status, log, ptx = compile_ptx(nvrtc, kernels.source_code(source), CUPY_OPTIONS + [f"-arch={architecture}"])
    assert status == 0 and "warning" not in log.lower(), f"{source}.cu for {architecture}:\n{log}"
    assert ".entry" in ptx


@pytest.mark.parametrize("source", ["segments", "scatter"])
def test_flush_to_zero_touches_no_float32_that_the_exact_kernels_read(nvrtc, source):
    """Under -ftz=true the PTX of the block norms, the scale and the scatter-add holds no f32 arithmetic and no
    conversion from f32 (cvt.ftz.f64.f32 read subnormal gradients as 0); the one .ftz instruction left rounds a
    double to float, reached only for results of normal magnitude."""
    _, _, ptx = compile_ptx(nvrtc, kernels.source_code(source), CUPY_OPTIONS + ["-arch=compute_90"])
    flushing = set(re.findall(r"\b[a-z]+(?:\.[a-z0-9]+)*\.ftz(?:\.[a-z0-9]+)*", ptx))
    assert flushing <= {"cvt.rn.ftz.f32.f64"}, flushing
    assert not re.search(r"\b(add|sub|mul|fma|div|abs|neg|max|min)(\.[a-z]+)*\.f32\b", ptx)
