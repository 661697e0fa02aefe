"""examples/trace_one_update.py: one update of the 18-layer sigmoid MLP, layer by layer — the 7× fall per layer,
minibng's backward equal to PyTorch's autograd, and AdamNG's equal steps beside Adam's that span orders of magnitude."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minibng.data import DatasetError
from audit_support import require_framework
from support import real_data_root

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "trace_one_update.py"


@pytest.fixture(scope="module")
def trace():
    spec = importlib.util.spec_from_file_location("trace_one_update", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic_run(trace, tmp_path_factory):
    """The script's measurements on its synthetic batch (what a machine without MNIST sees)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trace.mnist, "load", mnist_missing)
        x, y, source = trace.first_batch()
    trace.mb.manual_seed(0)
    model = trace.models.mlp(trace.DEPTH)
    return {"x": x, "y": y, "source": source, "rows": trace.backward_pass(model.copy(), x, y),
            "adam": trace.one_update(model, x, y, None), "adamng": trace.one_update(model, x, y, "block"),
            "model": model}


def mnist_missing(*args, download=True, **kwargs):
    assert download is False, "the script must never download"
    raise DatasetError("data set 'mnist': file 'train-images-idx3-ubyte.gz' was not found.")


def test_without_mnist_the_batch_is_synthetic_and_says_so(synthetic_run):
    assert synthetic_run["x"].shape == (100, 784) and synthetic_run["x"].dtype == np.float32
    assert 0 <= synthetic_run["x"].min() and synthetic_run["x"].max() <= 1
    assert synthetic_run["source"].startswith("SYNTHETIC images") and "never downloads" in synthetic_run["source"]


def test_the_error_reaching_each_layer_falls_by_sigma_prime_times_one_over_root_3(synthetic_run):
    rows = synthetic_run["rows"]
    assert len(rows) == 18 and rows[-1]["mean σ′"] is None
    slopes = np.array([row["mean σ′"] for row in rows[:-1]])
    assert (slopes <= 0.25).all() and (slopes > 0.24).all()
    errors = np.array([row["‖∂L/∂b‖"] for row in rows])
    falls = errors[1:] / errors[:-1]
    predicted = 1 / (slopes * np.array([row["‖W‖"] / np.sqrt(w) for row, w in zip(rows[1:], [100] * 16 + [10])]))
    np.testing.assert_allclose(falls, predicted, rtol=0.25)   # 17 falls of ~7×, as σ′ and ‖W‖/√n predict
    assert 1e13 < errors[-1] / errors[0] < 1e16


def test_minibng_and_autograd_give_the_same_gradient_norms(trace, synthetic_run):
    require_framework("torch")
    run = synthetic_run
    torch_norms = trace.autograd_norms(run["model"], run["x"], run["y"])
    np.testing.assert_allclose([row["‖g‖"] for row in run["rows"]], torch_norms, rtol=1e-5)


def test_adamng_steps_are_equal_across_layers_while_adams_span_orders_of_magnitude(synthetic_run):
    adam, adamng = synthetic_run["adam"], synthetic_run["adamng"]
    np.testing.assert_allclose(adamng["‖d‖"], 1.0, rtol=1e-6)                    # ĝ^i has norm 1
    np.testing.assert_allclose(adam["‖m‖"], 0.1 * np.array(adam["‖d‖"]), rtol=1e-5)   # m = (1 − β₁)d at t = 1
    hidden = np.array(adamng["‖Δx‖"][1:-1])
    np.testing.assert_allclose(hidden, 1e-3 * np.sqrt(100 * 100 + 100), rtol=1e-3)   # η per coordinate
    np.testing.assert_allclose(adamng["‖Δx‖"], adamng["‖u‖"], rtol=1e-3)
    assert max(adam["‖Δx‖"]) / min(adam["‖Δx‖"]) > 1e8
    assert adam["‖Δx‖"][0] < 0.5 * adam["‖u‖"][0]    # rounding loses most of Adam's tiny first-layer step


def test_the_script_prints_one_line_per_layer_for_both_tables_on_mnist():
    data = real_data_root("mnist")
    env = {**os.environ, "MINIBNG_DATA": str(data), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert out.startswith("Data: MNIST, the first 100 training images.")
    backward, update = out.split("\n2. One update")
    backward_rows = re.findall(r"^\s+(\d+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+)$", backward, re.M)
    update_rows = re.findall(r"^\s+(\d+) \|(.*)\|(.*)$", update, re.M)
    assert [int(r[0]) for r in backward_rows] == list(range(1, 19)) == [int(r[0]) for r in update_rows]
    if importlib.util.find_spec("torch") is not None:
        assert all(r[6] == r[7] for r in backward_rows), "minibng's ‖g^i‖ and autograd's differ as printed"
    else:
        assert "PyTorch is not installed" in out and all(r[7] == "—" for r in backward_rows)
    adam_steps = [float(r[1].split()[-1]) for r in update_rows]
    adamng_steps = [float(r[2].split()[-1]) for r in update_rows]
    assert all(s == 0.1 for s in adamng_steps[1:-1]) and max(adam_steps) / min(adam_steps) > 1e8
    for column in ("mean σ′:", "‖W^i‖:", "‖∂L/∂b^i‖:", "in spread:", "‖d‖:", "‖m‖, ‖v‖:", "‖u‖:", "‖Δx‖:"):
        assert f"\n{column}" in out, f"no sentence for the column {column}"
