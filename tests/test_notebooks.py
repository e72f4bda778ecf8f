"""Check the notebooks in ``notebooks/`` and execute them in their FAST setting.

Each notebook is a pair (see notebooks/README.md): ``NAME.py``, its text source
in jupytext's ``py:percent`` format, and ``NAME.ipynb``, the same cells with
the stored outputs of the default setting. The quick checks only read files:
the two halves of a pair agree, the "parameters" cell comes first, outputs are
stored and carry no paths of the machine that ran them, notebooks/README.md
lists every notebook, and the setup cell installs nothing (where minirect is
missing it says how to install it). A broken notebook is a failing test: the slow ones execute every
notebook in a fresh kernel started from this interpreter (nbclient replaces
the kernel spec's "python" with ``sys.executable``), with
``MINIRECT_NOTEBOOK_FAST=1``, in a temporary working directory (a notebook
must not depend on the folder it is started in), and with the repository on
``PYTHONPATH``, so the checkout under test is what the notebook imports.
"""

from __future__ import annotations

import configparser
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOK_DIR.glob("*.py"))
CELL_TIMEOUT = 300

nbformat = pytest.importorskip("nbformat")


def _ids(paths):
    return [p.stem for p in paths]


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _cells(nb):
    """What a pair must agree on: each cell's type, source and tags."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


# -- The pairs: NAME.py (the source people edit) and NAME.ipynb (with outputs) --------------

def test_every_notebook_has_a_text_source():
    assert {p.stem for p in NOTEBOOKS} == {p.stem for p in SOURCES}, (
        "each notebooks/NAME.ipynb needs its text source notebooks/NAME.py and vice versa "
        "(`jupytext --sync notebooks/NAME.py` writes the missing half; see notebooks/README.md)")


def test_jupytext_pairs_ipynb_with_py_percent():
    # `jupytext --sync` and Jupyter (with jupytext installed) pair the files through this config.
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    path = find_jupytext_configuration_file(str(NOTEBOOK_DIR))
    assert path and Path(path).parent == NOTEBOOK_DIR, f"no jupytext config in {NOTEBOOK_DIR}: {path}"
    config = load_jupytext_configuration_file(path)
    assert config.default_formats(str(NOTEBOOKS[0])) == "ipynb,py:percent"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_matches_its_source(path):
    import jupytext

    source = path.with_suffix(".py")
    assert source.exists(), f"{path.name} has no text source {source.name}"
    text_cells, stored_cells = _cells(jupytext.read(source)), _cells(_read(path))
    hint = (f"{path.name} and {source.name} disagree; after editing {source.name}, run "
            f"`jupytext --sync notebooks/{source.name}` and execute the notebook (notebooks/README.md)")
    assert len(text_cells) == len(stored_cells), f"{hint}: {len(text_cells)} cells vs {len(stored_cells)}"
    for index, (text, stored) in enumerate(zip(text_cells, stored_cells)):
        assert text == stored, f"{hint}: cell {index} differs"


# -- What every notebook starts with ----------------------------------------------------------

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


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_sys_path_fallback(path):
    # A notebook imports the installed minirect, from whatever folder its kernel started in.
    assert "sys.path" not in path.read_text(encoding="utf-8"), (
        f"{path.name} changes sys.path; install minirect instead (pip install -e \".[notebooks]\")")


# Runs the parameters and setup cells of each notebook in one fresh interpreter, first with
# minirect hidden (sys.modules[name] = None: find_spec says it is not installed) and with
# subprocess and os.system replaced by recorders, then once more with it present.
_SETUP_HARNESS = r"""
import json, os, subprocess, sys

notebooks = json.loads(sys.stdin.read())
calls = []

def record(*args, **kwargs):
    calls.append([str(a) for a in args])
    return 0

subprocess.check_call = subprocess.run = subprocess.call = subprocess.Popen = record
os.system = record

def run(cells, hide):
    for name in [m for m in sys.modules if m == "minirect" or m.startswith("minirect.")]:
        del sys.modules[name]
    if hide:
        sys.modules["minirect"] = None
    namespace = {"__name__": "__main__"}
    for source in cells:
        code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
        exec(compile(code, "<cell>", "exec"), namespace)

results = {}
for name, cells in notebooks.items():
    calls.clear()
    print(f"--- {name}", flush=True)
    try:
        run(cells, hide=True)
        missing = None
    except ModuleNotFoundError as error:
        missing = str(error)
    results[name] = {"missing_message": missing, "missing_calls": list(calls)}
    calls.clear()
    run(cells, hide=False)
    results[name]["present_calls"] = list(calls)
print("RESULTS " + json.dumps(results))
"""

def test_setup_cfg_names_no_invented_address():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "url" not in config["metadata"], (
        "setup.cfg's url must be the project's real public address; it has none yet")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_setup_cell_installs_nothing_and_says_how_to_install(path):
    cells = _code_cells(_read(path))
    setup = cells[1].source
    assert not re.search(r"subprocess|check_call|os\.system|^\s*[!%]pip|git\+|https?://", setup,
                         re.M), (
        f"{path.name}: the setup cell must not install minirect from anywhere:\n{setup}")
    env = dict(os.environ, MINIRECT_NOTEBOOK_FAST="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    env.pop("MINIRECT_DEVICE", None)
    proc = subprocess.run([sys.executable, "-c", _SETUP_HARNESS],
                          input=json.dumps({path.stem: [cells[0].source, setup]}),
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.rsplit("RESULTS ", 1)[1])[path.stem]
    assert result["missing_calls"] == [] and result["present_calls"] == [], result
    message = result["missing_message"]
    assert message and "minirect is not installed" in message, (
        f"{path.name}: without minirect the setup cell should stop and say so: {message!r}")
    for how in ("pip install -e", "python -m build", "%pip install"):
        assert how in message, f"{path.name}: the message should say how to install ({how!r}): {message}"
    # with minirect installed it imports and prints the versions and the device
    assert proc.stdout.count("device: cpu") == 1, f"{path.name}: the setup cell did not finish"


def test_readme_lists_every_notebook():
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in NOTEBOOKS if f"| `{p.stem}` |" not in readme]
    assert not missing, f"notebooks/README.md's table does not list {missing}"


# What a stored output must not show: the folders of the machine that ran it, and
# warnings about the environment rather than the lesson.
_MACHINE_TRACES = [str(ROOT), "site-packages", "/home/", "/tmp/", "/Users/", "\\Users\\",
                   "IProgress not found"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs_carry_no_machine_paths(path):
    found = []
    for index, cell in enumerate(_code_cells(_read(path))):
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] + [v for k, v in output.get("data", {}).items()
                                                if k.startswith("text/") and isinstance(v, str)]
            texts += output.get("traceback", [])
            for text in texts:
                found += [(index, trace) for trace in _MACHINE_TRACES if trace in text]
    assert not found, (f"{path.name}: stored outputs show the machine that ran them "
                       f"(code cell, text): {found[:5]}; print relative paths or names instead")


# -- Stored outputs and execution ----------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_outputs(path):
    """The notebook was executed before it was saved: every code cell has a count, no errors."""
    nb = _read(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        assert cell.execution_count is not None, (
            f"{path.name}, cell {index}: not executed; execute the notebook in its default setting "
            "and save it with its outputs (notebooks/README.md)")
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name}, cell {index}: stored error {errors[0].get('ename')}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_fast(path, monkeypatch, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MINIRECT_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    nb = _read(path)
    # The kernel starts in an empty temporary folder, not in notebooks/.
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()      # raises CellExecutionError with the failing cell's traceback
