#!/usr/bin/env bash
# The lines of the GPU half that no test reaches on a machine without a GPU: coverage.py over the test suite (on
# NumPy, with the fakes of tests/: fake_cupy.py, fake_ranks.py), reported for the files that hold GPU code.
# What it lists is what only a device can show (docs/performance.md, "What only a GPU can show").
#
#   pip install -e ".[coverage]";  bash bench/gpu_coverage.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(mktemp -d)/coverage"
python -m coverage run --data-file="$data" --source=minibng -m pytest -q -p no:cacheprovider "$@" >/dev/null || true
python -m coverage report --data-file="$data" -m \
    --include="minibng/backend.py,minibng/distributed.py,minibng/optim/partition.py,minibng/gpu/*.py"
