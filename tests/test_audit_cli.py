"""The audit's command line: exit status 0 / 1 / 2, one-line usage errors without a traceback, the --json file."""
import json
import subprocess
import sys

import pytest

from audit_candidates import numpy_candidates as candidates
from audit_support import spec
from minibng.audit import audit_optimizer, optimizer_audit
from minibng.audit.cli import main
from minibng.audit.self_check import PAIRS, format_self


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


def test_a_candidate_file_that_exits_at_import_is_a_usage_error(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text("import sys\n\n\ndef factory():\n    pass\n\n\nsys.exit(3)\n")
    for argv in (["optimizer", "adam", "--against", f"{script}:factory", "--framework", "numpy"],
                 ["layer", f"{script}:factory", "--input-shape", "3,5"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "importing it called sys.exit(3)" in err and err.count("\n") == 1, err


def test_a_run_whose_candidate_raised_has_no_worst_fraction(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["optimizer", "sgd", "--against", spec("numpy", "raises_at_step_two"), "--framework", "numpy",
                 "--scales", "1", "--json", str(out)]) == 1
    run_line = next(line for line in capsys.readouterr().out.splitlines() if "raised at step 2" in line)
    assert run_line.split()[-1] == "n/a"
    assert json.loads(out.read_text())["runs"][0]["worst"] is None
    raised = audit_optimizer("sgd", candidates.raises_at_step_two, "numpy", scales=(1,))
    table = format_self([(PAIRS[0], raised)], {}, "float64", 5, (1,))
    assert next(line for line in table.splitlines() if PAIRS[0].label in line).split()[-1] == "n/a"


def test_the_self_table_sizes_its_columns_to_their_content():
    agreeing = audit_optimizer("sgdmng", candidates.sgdmng, "numpy", scales=(1,), lr=0.1)
    pairs = [pair for pair in PAIRS if pair.settings]   # sgdm(weight_decay=0.01): the longest preset cell
    lines = format_self([(pair, agreeing) for pair in pairs], {}, "float64", 5, (1,)).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("framework optimizer"))
    rows = [line for line in lines if any(pair.label in line for pair in pairs)]
    assert "sgdm(weight_decay=0.01)  " in "\n".join(rows)
    assert {row.index("agrees") for row in rows} == {header.index("result")}


def test_an_error_while_running_the_reference_is_not_a_usage_error(monkeypatch):
    """Only judging the arguments makes usage errors; a failure inside a run propagates with its traceback."""
    def broken_run(*args, **kwargs):
        raise TypeError("a bug inside the reference's step")

    monkeypatch.setattr(optimizer_audit, "run_minibng", broken_run)
    with pytest.raises(TypeError, match="a bug inside the reference's step"):
        main(["optimizer", "sgd", "--against", spec("numpy", "sgdmng"), "--framework", "numpy", "--scales", "1"])


def test_a_value_error_of_the_layers_own_code_is_not_a_usage_error(tmp_path):
    """Only what check_layer cannot check is a usage error; a ValueError that the audited backward raises is the
    layer's failure and propagates with its traceback."""
    layer_file = tmp_path / "layers.py"
    layer_file.write_text("from minibng import nn\n\nclass Refusing(nn.Tanh):\n    def backward(self, dy):\n"
                          "        raise ValueError('a bug inside the layer')\n\ndef refusing():\n"
                          "    return Refusing()\n")
    with pytest.raises(ValueError, match="a bug inside the layer"):
        main(["layer", f"{layer_file}:refusing", "--input-shape", "3,5"])


def test_an_input_the_layer_audit_cannot_check_is_a_usage_error(tmp_path, capsys):
    layer_file = tmp_path / "layers.py"
    layer_file.write_text("from minibng import nn\n\nclass Nothing(nn.Module):\n    def forward(self, x):\n"
                          "        return x[:0]\n\ndef nothing():\n    return Nothing()\n")
    assert main(["layer", f"{layer_file}:nothing", "--input-shape", "3,5"]) == 2
    err = capsys.readouterr().err
    assert "no values" in err and err.count("\n") == 1, err


def test_audit_self_with_no_framework_installed_is_a_usage_error(monkeypatch, capsys):
    """Every comparison skipped is no agreement: exit 2 with the reasons, not 0."""
    from minibng.audit import cli
    monkeypatch.setattr(cli, "unavailable_frameworks", lambda: {"optax": "optax is not installed",
                                                               "torch": "torch is not installed"})
    assert main(["self"]) == 2
    err = capsys.readouterr().err
    assert "neither is installed: optax is not installed; torch is not installed" in err and err.count("\n") == 1
