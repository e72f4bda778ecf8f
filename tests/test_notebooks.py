"""Execute every notebook in ``notebooks/`` in its FAST setting.

A broken notebook is a failing test. Each notebook runs in a fresh kernel
started from this interpreter (nbclient replaces the kernel spec's "python"
with ``sys.executable``), with ``MINIRECT_NOTEBOOK_FAST=1`` and the repository
on ``PYTHONPATH``, so the checkout under test is what the notebook imports.
The structural checks (a "parameters" cell first, stored outputs) are quick
and run without executing anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300

nbformat = pytest.importorskip("nbformat")


def _ids(paths):
    return [p.stem for p in paths]


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {ROOT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_code_cell_is_tagged_parameters(path):
    cells = _code_cells(_read(path))
    assert cells, f"{path.name} has no code cell"
    tags = cells[0].metadata.get("tags", [])
    assert "parameters" in tags, f"{path.name}: the first code cell must be tagged 'parameters', has {tags}"
    source = cells[0].source
    assert "MINIRECT_NOTEBOOK_FAST" in source and "SEED" in source, (
        f"{path.name}: the parameters cell should read MINIRECT_NOTEBOOK_FAST and set SEED")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_markdown_cell_has_a_title(path):
    # The documentation uses it as the page title (docs/notebooks/00_running.md).
    markdown = [c for c in _read(path).cells if c.cell_type == "markdown"]
    assert markdown and markdown[0].source.lstrip().startswith("# "), (
        f"{path.name}: the first markdown cell must start with a '# ' heading")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs(path):
    """The notebook was executed before it was saved: every code cell has a count, no errors."""
    nb = _read(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        assert cell.execution_count is not None, (
            f"{path.name}, cell {index}: not executed; run the notebook (notebooks/build_notebooks.py) "
            "and save it with its outputs")
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name}, cell {index}: stored error {errors[0].get('ename')}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_fast(path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MINIRECT_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    nb = _read(path)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()      # raises CellExecutionError with the failing cell's traceback
