"""The design's structural rules (DESIGN.md §2): layers and optimizers ask the backend for their array module,
imports point one way, backend ← nn ← optim ← train ← examples, and the code stays within its line budget."""
import ast
import io
import pathlib
import re
import tokenize

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


def code_lines(path):
    """Lines holding code: not blank, not only a comment, not part of a module, class or function docstring."""
    source = path.read_text(encoding="utf-8")
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def test_the_core_and_the_package_stay_within_their_line_budgets():
    """Core (backend.py, nn/, optim/) under 2,000 lines of code, the whole package under 5,000 (Step 2's budget:
    what a reader must hold to audit the method stays small)."""
    core = [PACKAGE / "backend.py", *sources("nn"), *sources("optim")]
    assert sum(map(code_lines, core)) < 2000
    assert sum(map(code_lines, PACKAGE.rglob("*.py"))) < 5000
