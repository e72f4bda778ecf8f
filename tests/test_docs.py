"""The documentation: it builds without warnings, its links from the code
resolve, and the numerical checks on the derivation pages run and pass."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DERIVATIONS = ["elementwise", "reductions", "matmul", "conv", "activations", "softmax", "dropout",
               "initialization"]


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    for page in ["index", "getting-started", "gpu", "reproduction", "benchmarks", "notebooks",
                 "api/index", "api/functional"] + [f"derivations/{name}" for name in DERIVATIONS]:
        assert (out / f"{page}.html").is_file(), f"{page}.html was not built"
    # autodoc really ran: the functional reference documents the convolution
    assert "im2col" in (out / "api" / "functional.html").read_text(encoding="utf-8")


def _referenced_doc_paths():
    """Every docs/....md named in the package's source and in the README's links."""
    pattern = re.compile(r"docs/[\w./-]+?\.md")
    found = set()
    for path in list((ROOT / "minirect").rglob("*.py")) + [ROOT / "README.md"]:
        found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def test_doc_paths_named_in_the_code_exist():
    paths = _referenced_doc_paths()
    assert "docs/derivations/conv.md" in paths        # the search itself works
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, f"the code or README refers to missing documentation files: {missing}"


def _check_section(name):
    text = (DOCS / "derivations" / f"{name}.md").read_text(encoding="utf-8")
    heading = "\n## Check it numerically\n"
    assert heading in text, f"{name}.md has no 'Check it numerically' section"
    section = text.split(heading, 1)[1]
    assert "\n## " not in section, f"'Check it numerically' is not the last section of {name}.md"
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"{name}.md: no python code block in 'Check it numerically'"
    return blocks


@pytest.mark.parametrize("name", DERIVATIONS)
def test_derivation_page_check_runs(name):
    """The snippet that ends each derivation page is real, passing code."""
    for block in _check_section(name):
        exec(compile(block, f"docs/derivations/{name}.md", "exec"), {"__name__": "__docs__"})
