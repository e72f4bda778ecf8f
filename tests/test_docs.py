"""The documentation: it builds without warnings, its links from the code
resolve, and the numerical checks on the derivation pages run and pass."""

import json
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
    for page in ["index", "getting-started", "coming-from-pytorch", "gpu", "cluster", "reliability",
                 "reproduction", "benchmarks", "notebooks", "api/index", "api/functional"] + \
            [f"derivations/{name}" for name in DERIVATIONS]:
        assert (out / f"{page}.html").is_file(), f"{page}.html was not built"
    # autodoc really ran: the functional reference documents the convolution
    assert "im2col" in (out / "api" / "functional.html").read_text(encoding="utf-8")
    _check_site(out)


def _check_site(out):
    """What the theme and the offline set-up promise, read from the built HTML.

    (tests/test_docs_browser.py checks in a browser that the math is typeset.)
    """
    pages = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
             for p in out.rglob("*.html") if "_static" not in p.parts and "_modules" not in p.parts}
    # Nothing is loaded from the network: MathJax is a file of the site.
    remote = re.compile(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]*\"")
    online = {name: remote.findall(html)[:2] for name, html in pages.items() if remote.search(html)}
    assert not online, f"pages that load files from the network: {online}"
    mathjax = re.compile(r'<script[^>]*src="(?:\.\./)*_static/mathjax/tex-mml-chtml\.js')
    for name in [f"derivations/{n}.html" for n in DERIVATIONS] + ["reproduction.html"]:
        assert mathjax.search(pages[name]), f"{name} does not load the site's own MathJax"
    assert (out / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert list((out / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff")), \
        "MathJax's fonts were not copied"
    # Left: the table of contents by part, with the porting page; right: the page's outline.
    captions = re.findall(r'<span class="caption-text">([^<]+)</span>', pages["index.html"])
    for part in ["Using minirect", "Derivations", "The paper", "Notebooks", "API"]:
        assert part in captions, f"the table of contents has no part {part!r}: {captions}"
    nav = pages["derivations/activations.html"].split('class="bd-links', 1)[1].split("</nav>", 1)[0]
    assert "coming-from-pytorch.html" in nav, "the porting page is not in the navigation"
    outline = pages["derivations/activations.html"].split('id="pst-page-toc-nav"', 1)[1]
    assert outline.split("</nav>", 1)[0].count("<a ") >= 3, "no page outline on the right"
    # Code copy buttons and an offline search index.
    assert "copybutton.js" in pages["getting-started.html"]
    assert (out / "search.html").is_file() and (out / "searchindex.js").is_file()
    # Every notebook page offers its .ipynb for download, and the file is a notebook.
    notebooks = [n for n in pages if n.startswith("notebooks/0") and n != "notebooks/00_running.html"]
    assert notebooks, "no notebook pages were built"
    for name in notebooks:
        stem = name[len("notebooks/"):-len(".html")]
        link = f'href="../_sources/notebooks/{stem}.ipynb"'
        assert link in pages[name], f"{name}: no download link to {stem}.ipynb"
        notebook = json.loads((out / "_sources" / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
        assert notebook["cells"] and "nbformat" in notebook


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


def _check_section(name, folder="derivations"):
    text = (DOCS / folder / f"{name}.md").read_text(encoding="utf-8")
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


def test_porting_page_check_runs():
    """The differences from PyTorch/DeZero that the porting page states hold in the code."""
    for block in _check_section("coming-from-pytorch", folder="."):
        exec(compile(block, "docs/coming-from-pytorch.md", "exec"), {"__name__": "__docs__"})
