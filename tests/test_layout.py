"""The design's structural rules (DESIGN.md §2): layers and optimizers ask the backend for their array module,
imports point one way, backend ← nn ← optim ← train ← examples."""
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minibng"
DIRECT_IMPORT = re.compile(r"^\s*(import (numpy|cupy)|from (numpy|cupy)[ .])", re.M)


def sources(folder):
    return sorted((PACKAGE / folder).glob("*.py"))


def test_layers_and_optimizers_never_import_numpy_or_cupy():
    offenders = [str(f.relative_to(PACKAGE)) for folder in ("nn", "optim") for f in sources(folder)
                 if DIRECT_IMPORT.search(f.read_text())]
    assert offenders == []


def test_nn_never_imports_optim_train_or_data():
    pattern = re.compile(r"^\s*from \.\.(optim|train|data|examples)\b|^\s*import minibng\.(optim|train)", re.M)
    assert [f.name for f in sources("nn") if pattern.search(f.read_text())] == []


def test_models_and_data_import_only_nn_and_backend():
    pattern = re.compile(r"^\s*from \.\.(optim|train|examples|plot)\b", re.M)
    assert [f.name for folder in ("models", "data") for f in sources(folder) if pattern.search(f.read_text())] == []
