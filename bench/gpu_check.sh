#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run, each part under its own time limit:
#   1. the whole test suite with MINIBNG_TEST_DEVICE=gpu (every test taking `device` runs on CuPy too),
#   2. the README's GPU command, python -m minibng.examples.mnist_mlp --device gpu (2 epochs),
#   3. bench/conv.py --device gpu: the ResNet-20 training step on CuPy against PyTorch on CUDA,
#   4. ResNet-20 for one epoch of Fashion-MNIST on the GPU, sgdm and sgdmngadap, three seeds (docs/experiments/cifar.md).
# Needs CuPy (pip install "minibng[gpu]") and the data sets under $MINIBNG_DATA (tests: $MINIBNG_TEST_DATA).
# Usage: bash bench/gpu_check.sh [LOG_FOLDER]     (default /tmp/minibng-gpu-check); PYTHON=python3 to choose.
set -uo pipefail
cd "$(dirname "$0")/.."
logs="${1:-/tmp/minibng-gpu-check}"
mkdir -p "$logs"
py="${PYTHON:-python}"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=ci
export MINIBNG_DATA="${MINIBNG_DATA:-$(cd .. && pwd)/shared/data}"
export MINIBNG_TEST_DATA="${MINIBNG_TEST_DATA:-$MINIBNG_DATA}"

# installed, not only importable from here: the teaching-script tests run the scripts from another folder
(cd / && "$py" -c "import minibng" 2>/dev/null) || "$py" -m pip install --quiet -e ".[test]" || exit 1
"$py" -c "import cupy" 2>/dev/null || { echo 'CuPy is missing: pip install "minibng[gpu]"'; exit 1; }
"$py" -c "import cupy, numpy, sys; d = cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()
print(f'Python {sys.version.split()[0]}, NumPy {numpy.__version__}, CuPy {cupy.__version__} on {d}')"

part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to $logs/NAME.log, print its last line
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1
    local rc=$?
    echo "[$name] exit $rc after $((SECONDS - start)) s: $(grep -v '^\s*$' "$logs/$name.log" | tail -n 1)"
}

plugins=()  # where installed: 8 test processes, and a per-test limit so that one hung test cannot eat the rest
"$py" -c "import xdist" 2>/dev/null && plugins+=(-n 8)
"$py" -c "import pytest_timeout" 2>/dev/null && plugins+=(--timeout 120)
part tests "${GPU_CHECK_TESTS_S:-300}" env MINIBNG_TEST_DEVICE=gpu "$py" -m pytest -v --tb=short -rf \
    -p no:cacheprovider "${plugins[@]}" -k "gpu or not cpu" ${GPU_CHECK_TESTS:-}
grep -oE "(FAILED|ERROR) tests/[^ ]+" "$logs/tests.log" | sort -u | head -n 60

part mnist_mlp 90 "$py" -m minibng.examples.mnist_mlp --device gpu --epochs 2 --no-progress --out "$logs/mnist_mlp"
part bench 90 "$py" bench/conv.py --device gpu --rounds 2 --steps 20
grep -A3 "^what" "$logs/bench.log"
part resnet "${GPU_CHECK_RESNET_S:-300}" "$py" -m minibng.examples.cifar_resnet --dataset fashion-mnist --epochs 1 \
    --optimizers sgdm,sgdmngadap --augment none --bn-update 100 --limit all --seeds 0,1,2 --device gpu --no-progress --out "$logs/resnet"
grep -E "epoch 1/" "$logs/resnet.log"
