"""docs/promises.md is the fault table of the tests: the same sections, cases and words, in the same order."""
import importlib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PAGE = TESTS.parent / "docs" / "promises.md"
MODULES = ["test_faults_interrupts", "test_faults_resume", "test_faults_training", "test_faults_nn",
           "test_faults_gradcheck", "test_faults_optim", "test_faults_data", "test_faults_flags",
           "test_faults_distributed"]
HEADER = "| case | input or fault | what happens |\n| --- | --- | --- |"


def expected_sections():
    modules = [importlib.import_module(name) for name in MODULES]
    return [(m.SECTION, [case.row() for case in m.PROMISES]) for m in modules]


def page_sections():
    sections = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif line.startswith("| `") and sections:
            sections[-1][1].append(line.strip())
    return [(title, rows) for title, rows in sections if rows]


def render(sections):
    return "\n\n".join(f"## {title}\n\n{HEADER}\n" + "\n".join(rows) for title, rows in sections)


def test_every_fault_module_is_on_the_page():
    found = sorted(p.stem for p in TESTS.glob("test_faults_*.py") if p.stem != "test_faults_docs")
    assert found == sorted(MODULES)


def test_the_page_lists_every_case_in_the_words_of_the_tests():
    expected = expected_sections()
    assert page_sections() == expected, f"docs/promises.md must hold these tables:\n\n{render(expected)}"
    assert sum(len(rows) for _, rows in expected) == len({row.split("`")[1] for _, rows in expected for row in rows})


def test_the_page_is_linked_from_the_index():
    assert "(promises.md)" in (TESTS.parent / "docs" / "index.md").read_text(encoding="utf-8")
