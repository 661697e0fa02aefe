"""The package's structural rules: layers and optimizers ask the backend for their array module, and imports point
one way between the package's rooms.

    backend ← nn ← optim ← train ← examples
    gpu (the CUDA kernels and the few CuPy calls) is the backend's device half: the two read each other;
    distributed (the world of an MPI job) between nn and train; audit reads nn and optim; models and data read only
    nn and backend; the gradcheck and theory modules re-export the audit package.  files (the atomic file writer
    and the CSV/JSONL logs) is a base module: it imports nothing of the package, and every room may import it.
"""
import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minibng"
DIRECT_IMPORT = re.compile(r"^\s*(import (numpy|cupy)|from (numpy|cupy)[ .])", re.M)

# the base modules, which import nothing of the package and which every room may import
BASE = {"files"}
# room -> the rooms its files may import besides BASE; a room always imports itself
MAY_IMPORT = {
    "files": set(),
    "backend": {"gpu"},
    "gpu": {"backend"},
    "nn": {"backend"},
    "optim": {"backend", "nn"},
    "distributed": {"backend", "gpu", "nn"},
    "train": {"backend", "nn", "optim", "distributed"},
    "audit": {"backend", "nn", "optim"},
    "models": {"backend", "nn"},
    "data": {"backend", "nn"},
    "plot": {"backend"},
    "gradcheck": {"audit"},
    "theory": {"audit"},
}
ROOMS = set(MAY_IMPORT) | {"examples", "__init__"}   # examples and the package's __init__ may import every room


def sources(folder):
    return sorted((PACKAGE / folder).glob("*.py"))


def room_of(path):
    """'nn' for minibng/nn/linear.py, 'backend' for minibng/backend.py, '__init__' for minibng/__init__.py."""
    first = path.relative_to(PACKAGE).parts[0]
    return first[:-3] if first.endswith(".py") else first


def imported_modules(path):
    """The dotted names, below minibng, of every module of the package that ``path`` imports (anywhere in the file,
    lazy imports inside functions included): 'files', 'nn', 'backend', …"""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]   # ('minibng', 'data') for data/x.py
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [f"{module}.{alias.name}" for alias in node.names] if not node.module else [module]
    return [name.split(".", 1)[1] for name in found if name.startswith("minibng.")]


def allowed(room, module):
    target = module.split(".")[0]
    if room in BASE:
        return False
    return room in ("examples", "__init__") or target == room or target in BASE or any(
        module == rule or module.startswith(rule + ".") for rule in MAY_IMPORT[room])


def test_every_file_of_the_package_sits_in_a_known_room():
    assert {room_of(path) for path in PACKAGE.rglob("*.py")} <= ROOMS


def test_imports_point_one_way_between_the_rooms():
    offenders = [f"{path.relative_to(PACKAGE)} imports minibng.{module}" for path in sorted(PACKAGE.rglob("*.py"))
                 for module in imported_modules(path) if not allowed(room_of(path), module)]
    assert offenders == []


def test_the_import_rule_would_catch_an_import_against_the_arrows():
    """The rule is not vacuous: the imports it parses are the real ones, and one against the arrows is refused."""
    assert "files" in imported_modules(PACKAGE / "data" / "download.py")
    assert "nn.module" in imported_modules(PACKAGE / "optim" / "partition.py")    # a lazy import, inside a function
    assert not allowed("nn", "optim.flat") and not allowed("models", "train") and not allowed("data", "train.loop")
    assert not allowed("optim", "train") and not allowed("audit", "train") and allowed("train", "optim")
    assert allowed("data", "files") and allowed("nn", "files") and not allowed("files", "backend")


def test_layers_and_optimizers_never_import_numpy_or_cupy():
    offenders = [str(f.relative_to(PACKAGE)) for folder in ("nn", "optim") for f in sources(folder)
                 if DIRECT_IMPORT.search(f.read_text())]
    assert offenders == []
