"""The notebooks of docs/notebooks/: stored without outputs (the docs build executes them, and an error in a cell
fails it), in the site's navigation, and run top to bottom on a machine without data, saying so, with the outputs
their text describes."""
import os
import re
from pathlib import Path

import pytest

from minibng.data import root
from audit_support import require_framework

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "docs" / "notebooks"
STALL, AUDIT = NOTEBOOKS / "why_deep_sigmoid_nets_stall.ipynb", NOTEBOOKS / "audit_an_optimizer.ipynb"

nbformat = pytest.importorskip("nbformat", reason="pip install -e \".[test]\" brings nbformat, nbclient, ipykernel")
nbclient = pytest.importorskip("nbclient", reason="pip install -e \".[test]\" brings nbformat, nbclient, ipykernel")


def test_the_notebooks_are_there():
    assert sorted(NOTEBOOKS.glob("*.ipynb")) == sorted([AUDIT, STALL])


@pytest.mark.parametrize("path", [STALL, AUDIT], ids=lambda p: p.name)
def test_stored_without_outputs_and_listed_in_the_site(path):
    """The site shows the outputs of its own build's execution; a stored output could only be stale."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
    assert f"notebooks/{path.name}" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")


def test_the_docs_build_executes_every_notebook_and_fails_on_an_error():
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    plugin = re.search(r"^  - mkdocs-jupyter:\n((?:      .*\n)+)", config, re.M)
    assert plugin, "mkdocs.yml: the mkdocs-jupyter plugin is missing"
    settings = dict(line.strip().split(": ", 1) for line in plugin.group(1).splitlines())
    assert settings["execute"] == "true" and settings["allow_errors"] == "false" and settings["cache"] == "false"


def run(path, tmp_path):
    """Execute ``path`` from its folder, as Jupyter and the docs build do, in an environment where no data root but
    the system's holds anything; returns the text of its outputs and their MIME types."""
    env = {key: value for key, value in os.environ.items() if key not in ("MINIBNG_DATA", "MINIBNG_TEST_DATA")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path), OMP_NUM_THREADS="1")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in outputs)
    return text, [mime for output in outputs for mime in output.get("data", {})]


def no_mnist_on_this_machine():
    return not any((folder / "mnist").is_dir() for folder in root.SYSTEM_ROOTS)


def test_why_deep_sigmoid_nets_stall_runs_without_data(tmp_path):
    text, mimes = run(STALL, tmp_path)
    if no_mnist_on_this_machine():
        assert text.count("SYNTHETIC") == 2 and "never downloads" in text   # the trace, then the training data
    assert "largest σ′ on [-10, 10]: 0.2500" in text and "seventeen layers: × 3.6e-15" in text
    assert "1. The backward pass" in text and "2. One update" in text
    assert re.search(r"adamng  epoch 2:  training objective \d", text)
    assert "image/png" in mimes


def test_audit_an_optimizer_finds_both_planted_bugs(tmp_path):
    require_framework("torch")
    text, _ = run(AUDIT, tmp_path)
    reports = text.split("minibng.audit: ")[1:]
    assert len(reports) == 4
    per_tensor, layers64, layers32, exact32 = reports
    assert "variant:   per-tensor-blocks" in per_tensor
    assert "difference 9.05e-10" in per_tensor and "parts at step 1        1e+12" in per_tensor   # as the text says
    assert "AGREES" in layers64 and "float64" in layers64
    assert "variant:   naive-norm" in layers32 and "stage:     block norms" in layers32
    assert "g 2.33e-32" in layers32                                                                # as the text says
    assert "AGREES" in exact32 and "float32" in exact32
