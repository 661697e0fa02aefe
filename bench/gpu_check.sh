#!/usr/bin/env bash
# Run the whole test suite on the GPU (CuPy) as well as on NumPy, and print a one-line summary.
# Needs a CUDA GPU; installs CuPy for CUDA 12 if it is missing.  Usage: bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
python -c "import cupy" 2>/dev/null || python -m pip install --quiet "cupy-cuda12x"
python -m pip install --quiet -e ".[test]"
python -c "import cupy; print('CuPy', cupy.__version__, 'on', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())"
export MINIBNG_DATA="${MINIBNG_DATA:-$(cd .. && pwd)/shared/data}" MINIBNG_TEST_DATA="${MINIBNG_TEST_DATA:-$(cd .. && pwd)/shared/data}"
MINIBNG_TEST_DEVICE=gpu HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider -k "gpu or not cpu" 2>&1 | tee /tmp/minibng-gpu-check.log | tail -n 30
echo "GPU check summary: $(grep -E '[0-9]+ (passed|failed)' /tmp/minibng-gpu-check.log | tail -n 1)"
