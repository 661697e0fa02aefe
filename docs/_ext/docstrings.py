"""Griffe extension for the docs site: render minibng's plain-text docstrings as the authors laid them out.

minibng's docstrings are free text with Unicode math, written to read well in ``help()``. Four habits of
theirs do not survive Markdown unchanged; this extension rewrites them before mkdocstrings renders a page
(the package's source is never touched):

1. Sphinx roles, e.g. :func:`get_array_module` or :mod:`~minibng.data.mnist`, become cross-references to the
   API pages (optional ones: a target that no page documents is shown as code, without a warning).
2. An indented block of equations directly below a line of text (no blank line between, as in "Backward, for
   upstream gradient dy = ∂L/∂y:" followed by the equations) is made a code block, so it keeps its lines.
3. A run of "name   description" lines aligned in two columns (a parameter list) becomes a two-column table.
4. Outside code, ``_`` and ``*`` are symbols (x_t, ‖g^i‖_2, x*), not emphasis: they are escaped, except a
   ``*word*`` emphasis; ``<`` is escaped so that ``<eos>`` is not taken for an HTML tag, and ``$`` so that
   ``$MINIBNG_DATA … $HOME`` is not taken for math (docstrings write their math in Unicode, not LaTeX).
"""
from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):`(~?)([\w.]+)(\(\))?`")
LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+[.)])\s")
CODE_SPAN = re.compile(r"(`+).+?\1")
EMPHASIS = re.compile(r"(?<![\w`*])\*[^\s*`][^*`\n]*?(?<=\S)\*(?![\w`*])")
COLUMN_ROW = re.compile(r"(?P<name>[A-Za-z_`][^ ]*(?:, [^ ]+)*) {2,}(?P<text>\S.*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _target(obj: griffe.Object, name: str) -> str:
    """The full dotted path of ``name`` as seen from ``obj``, or ``name`` itself when it cannot be resolved."""
    scope = obj
    while scope is not None:
        try:
            return scope.resolve(name)
        except Exception:  # griffe raises NameResolutionError, or another error for odd scopes
            scope = scope.parent
    return name


def replace_roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match) -> str:
        short, name, call = match.group(1), match.group(2), match.group(3) or ""
        shown = (name.rsplit(".", 1)[-1] if short else name) + call
        return f'<autoref identifier="{_target(obj, name)}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(link, text)


def _column_rows(lines: list[str], start: int) -> int:
    """How many lines from ``start`` form a two-column list (at least two rows, continuations indented)."""
    end, rows = start, 0
    while end < len(lines):
        line = lines[end]
        if _indent(line) == 0 and COLUMN_ROW.fullmatch(line):
            rows, end = rows + 1, end + 1
        elif rows and line.strip() and _indent(line) >= 4:
            end += 1
        else:
            break
    return end - start if rows >= 2 else 0


def _as_table(lines: list[str]) -> list[str]:
    table = ["", "| name | meaning |", "| --- | --- |"]
    for line in lines:
        row = COLUMN_ROW.fullmatch(line)
        cell = (row.group("text") if row else line.strip()).replace("|", "\\|")
        if row:
            table.append(f"| {row.group('name')} | {cell} |")
        else:
            table[-1] = table[-1][: -len(" |")] + f" {cell} |"
    return [*table, ""]


def restructure(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    in_code = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code:
            rows = _column_rows(lines, i)
            if rows:
                out.extend(_as_table(lines[i:i + rows]))
                i += rows
                continue
            previous = out[-1] if out else ""
            if (_indent(line) >= 4 and line.strip() and previous.strip() and _indent(previous) == 0
                    and not LIST_ITEM.match(previous) and not previous.startswith("|")):
                out.append("")
        out.append(line)
        i += 1
    return "\n".join(out)


def _escape_prose(text: str) -> str:
    parts, last = [], 0
    for match in EMPHASIS.finditer(text):
        parts += [_escape_symbols(text[last:match.start()]), match.group(0)]
        last = match.end()
    return "".join([*parts, _escape_symbols(text[last:])])


def _escape_symbols(text: str) -> str:
    return text.replace("_", "\\_").replace("*", "\\*").replace("$", "\\$").replace("<", "&lt;")


def escape_symbols(text: str) -> str:
    """Escape ``_``, ``*``, ``$`` and ``<`` outside code spans, fenced blocks and indented code blocks."""
    out, in_fence, in_block, previous_blank = [], False, False, True
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            out.append(line)
        elif in_fence:
            out.append(line)
        else:
            in_block = bool(line.strip()) and _indent(line) >= 4 and (previous_blank or in_block)
            if in_block:
                out.append(line)
            else:
                pieces, last = [], 0
                for match in CODE_SPAN.finditer(line):
                    pieces += [_escape_prose(line[last:match.start()]), match.group(0)]
                    last = match.end()
                out.append("".join([*pieces, _escape_prose(line[last:])]))
        previous_blank = not line.strip()
    return "\n".join(out)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class MinibngDocstrings(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = replace_roles(obj, escape_symbols(restructure(obj.docstring.value)))

    on_package_loaded = on_package  # the hook's name before griffe 2
