"""The audit's command line: exit status 0 / 1 / 2, one-line usage errors without a traceback, the --json file."""
import json
import subprocess
import sys

import pytest

from audit_support import spec
from minibng.audit.cli import main


def run(*argv):
    return subprocess.run([sys.executable, "-m", "minibng.audit", *argv], capture_output=True, text=True, timeout=120)


def test_a_part_exits_1_with_the_table_and_the_json_fields(tmp_path):
    out = tmp_path / "report.json"
    result = run("optimizer", "adamng", "--against", spec("numpy", "adamng_naive"), "--framework", "numpy",
                 "--dtype", "float32", "--steps", "3", "--json", str(out))
    assert result.returncode == 1, result.stderr
    assert "PARTS at scale 1e-30, step 1, block 0 (35 numbers)" in result.stdout
    assert "variant:   naive-norm" in result.stdout and result.stderr == ""
    report = json.loads(out.read_text())
    assert report["agrees"] is False and report["variant"] == "naive-norm"
    assert set(report["first"]) >= {"scale", "step", "block", "stage", "reference", "candidate", "difference"}
    assert report["first"]["scale"] == 1e-30 and report["tolerance"]["dtype"] == "float32"


def test_agreement_exits_0(tmp_path, capsys):
    assert main(["optimizer", "sgdmng", "--against", spec("numpy", "sgdmng"), "--framework", "numpy",
                 "--scales", "1,0", "--set", "lr=0.1"]) == 0
    assert "AGREES" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["optimizer", "adamm", "--against", "X.py:f", "--framework", "numpy"], "unknown optimizer 'adamm'"),
    (["optimizer", "adam", "--against", "X.py:f", "--framework", "jax"], "invalid choice: 'jax'"),
    (["optimizer", "adam", "--against", "missing.py:f", "--framework", "numpy"], "missing.py: no such file"),
    (["optimizer", "adam", "--against", "nocolon", "--framework", "numpy"], "expected FILE.py:FACTORY"),
    (["optimizer", "adam", "--against", spec("numpy", "nope"), "--framework", "numpy"], "defines no 'nope'"),
    (["optimizer", "adam", "--against", spec("numpy", "not_callable"), "--framework", "numpy"], "not callable"),
    (["optimizer", "adam", "--against", spec("numpy", "adamng"), "--framework", "numpy", "--set", "lr"],
     "expected NAME=VALUE"),
    (["optimizer", "adam", "--against", spec("numpy", "adamng"), "--framework", "numpy", "--set", "momentun=1"],
     "momentun"),
    (["optimizer", "adam", "--against", spec("numpy", "adamng"), "--framework", "numpy", "--scales", "1,x"],
     "--scales"),
    (["optimizer", "adam", "--against", spec("numpy", "adamng"), "--framework", "numpy", "--steps", "0"],
     "steps: expected an integer from 1"),
    (["optimizer", "adam", "--against", spec("numpy", "adamng"), "--framework", "numpy", "--json", "/nonexistent/x"],
     "--json"),
    (["layer", spec("numpy", "adamng"), "--input-shape", "4,x"], "--input-shape"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1, captured.err


def test_a_usage_error_prints_no_traceback():
    result = run("optimizer", "adamm", "--against", "X.py:f", "--framework", "numpy")
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_the_layer_command_gives_the_worst_coordinate_and_exits_1(tmp_path):
    layer_file = tmp_path / "layers.py"
    layer_file.write_text("from minibng import nn\n\nclass Quarter(nn.Tanh):\n    def backward(self, dy):\n"
                          "        return super().backward(dy) * 0.25\n\ndef quarter():\n    return Quarter()\n\n"
                          "def good():\n    return nn.Sequential(nn.Linear(5, 4), nn.Tanh())\n\n"
                          "def loss():\n    return nn.SoftmaxCrossEntropy()\n")
    out = tmp_path / "layer.json"
    result = run("layer", f"{layer_file}:quarter", "--input-shape", "3,5", "--json", str(out))
    assert result.returncode == 1 and "(analytic/numeric = 0.25)" in result.stdout
    assert json.loads(out.read_text())["ok"] is False
    assert main(["layer", f"{layer_file}:good", "--input-shape", "3,5"]) == 0
    assert main(["layer", f"{layer_file}:loss", "--input-shape", "4,3", "--input-shape", "4:3"]) == 0
