#!/usr/bin/env bash
# What only a CUDA GPU can show, in one run of under 8 minutes (each part under its own limit, the whole under
# GPU_CHECK_SECONDS, default 470), into one log a reader can judge, ending with a summary that lists every failure.
#
#   bash bench/gpu_check.sh [OUT_FOLDER]      default: $OUT/gpu-check where $OUT is set, else /tmp/gpu-check;
#                                             it receives one file, gpu_check.log (everything printed)
#   bash bench/gpu_check.sh --cpu [OUT]       a dry run without a GPU: the same parts on NumPy where they can run
#
# Parts, in order: 1 kernels (segment reductions for both dtypes against their host twins bit for bit and against
# float64 NumPy; segments of 1, 255-257, 8,193 and 10^6 entries; a float32 block of subnormal numbers; the scale,
# Philox draws, the scatter-add), 2 partition (Partition.norms/scale and 3 steps of every preset, GPU against
# NumPy), 3 nccl (one rank: communicator, all-reduce, broadcast, BatchNorm sync), 4 tests (MINIBNG_TEST_DEVICE=gpu
# pytest -k gpu, a per-test limit, failures and errors listed), 5 mnist_mlp (--device gpu, 1 epoch, 2,000 images),
# 6 timing (random draws, block norms, one MLP step; PyTorch's MLP step; bench/conv.py's ResNet-20 step against
# PyTorch on CUDA when PyTorch is installed).
#
# Needs python3 with NumPy, CuPy (13 or later), pytest and hypothesis (pytest-timeout and pytest-xdist used when
# there); nothing is installed: the checkout is imported through PYTHONPATH.  Data: the data root inside the
# checkout, datasets/ (git ignores its folders), with mnist/ and fashion-mnist/ as docs/data.md describes.  Fill
# it before the run, e.g. cp -r <shared data>/mnist /usr/share/datasets/fashion-mnist datasets/, and carry it:
# on the lent machine, carry=["datasets"] (42 MB of the 64 MiB that travel).
set -uo pipefail
cd "$(dirname "$0")/.."
cpu=0
if [ "${1:-}" = "--cpu" ]; then cpu=1; shift; fi
out="${1:-${OUT:+$OUT/gpu-check}}"
out="${out:-/tmp/gpu-check}"
rm -rf "$out" && mkdir -p "$out" || exit 2
log="$out/gpu_check.log"          # the one file written there (a lent machine sends back only a few)
work="$(mktemp -d)"               # each part's own log, and the example's run folder
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg HYPOTHESIS_PROFILE=ci
export MINIBNG_DATA="${MINIBNG_DATA:-$PWD/datasets}" MINIBNG_TEST_DATA="${MINIBNG_TEST_DATA:-$PWD/datasets}"
deadline=$((SECONDS + ${GPU_CHECK_SECONDS:-470}))
summary=()

part() {  # part NAME SECONDS COMMAND...: run under min(SECONDS, time left), log it, judge it by its exit status
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    local left=$((deadline - SECONDS - 5))
    if [ "$left" -lt 10 ]; then summary+=("$name: SKIPPED (the run's time is spent)"); return; fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=== $name (limit ${limit} s): $*" | tee -a "$log"
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$log" "$work/$name.log"
    status=${PIPESTATUS[0]}
    local verdict="ok"
    [ "$status" -ne 0 ] && verdict="FAILED (exit $status)"
    [ "$status" -eq 124 ] || [ "$status" -eq 137 ] && verdict="TIMED OUT after ${limit} s"
    echo "=== $name: $verdict in $((SECONDS - start)) s" | tee -a "$log"
    summary+=("$name: $verdict in $((SECONDS - start)) s")
    grep -E "^(FAIL |FAILED |ERROR )" "$work/$name.log" | head -n 40 | sed 's/^/    /' > "$work/$name.failures"
}

{
    echo "gpu_check $(date -u +%FT%TZ), checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    "$py" -c "import sys, numpy; print('Python', sys.version.split()[0], '| NumPy', numpy.__version__)"
    "$py" -c "import cupy; d = cupy.cuda.runtime.getDeviceProperties(0); print('CuPy', cupy.__version__, '|',
d['name'].decode(), '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())" 2>&1 | tail -n 1
    "$py" -c "import torch; print('PyTorch', torch.__version__)" 2>&1 | tail -n 1
} | tee -a "$log"

flag=()
[ "$cpu" = 1 ] && flag=(--cpu)
part kernels 45 "$py" bench/gpu_check.py kernels "${flag[@]}"
part partition 45 "$py" bench/gpu_check.py partition "${flag[@]}"
[ "$cpu" = 1 ] || part nccl 30 "$py" bench/gpu_check.py nccl

plugins=()
"$py" -c "import pytest_timeout" 2>/dev/null && plugins+=(--timeout 60)
"$py" -c "import xdist" 2>/dev/null && plugins+=(-n 4)
device=gpu
[ "$cpu" = 1 ] && device=cpu
part tests 150 env MINIBNG_TEST_DEVICE=$device "$py" -m pytest -q -rfE --tb=short -p no:cacheprovider -k gpu \
    "${plugins[@]}"

part mnist_mlp 50 "$py" -m minibng.examples.mnist_mlp --device $device --epochs 1 --limit 2000 --no-progress \
    --out "$work/mnist_mlp"
part timing 40 "$py" bench/gpu_check.py timing "${flag[@]}"
if "$py" -c "import torch" 2>/dev/null; then
    part timing_torch 25 "$py" bench/gpu_check.py timing-torch "${flag[@]}"
    [ "$cpu" = 1 ] || part resnet20_step 60 "$py" bench/conv.py --device gpu --rounds 1 --steps 5
fi

{
    echo "=== summary (log: $log)"
    for line in "${summary[@]}"; do
        echo "$line"
        name="${line%%:*}"
        [ -s "$work/$name.failures" ] && cat "$work/$name.failures"
    done
    grep -hE "^(one training step|random draw|Partition.norms|ResNet-20 training step)" "$work"/timing*.log \
        "$work"/resnet20_step.log 2>/dev/null | sed 's/^/    /'
} | tee -a "$log"
rm -rf "$work"
! printf '%s\n' "${summary[@]}" | grep -qvE ": ok in "
