"""Sphinx configuration for the minirect documentation.

Build (from the repository root)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

then open ``docs/_build/html/index.html``: the site works from disk with no
network (MathJax and the search index are part of it).

Pages are Markdown (MyST). Notebooks in ``../notebooks`` are copied into
``docs/notebooks/`` when the build starts (see ``_sync_notebooks``) and
rendered from their stored outputs by myst-nb: they are never executed here.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))   # document the checkout, installed or not

import minirect  # noqa: E402

# -- Project -------------------------------------------------------------------

project = "minirect"
author = "the minirect authors"
copyright = "the minirect authors, MIT licence"
version = release = minirect.__version__

# -- General ---------------------------------------------------------------------

extensions = [
    "myst_nb",                  # Markdown pages (MyST) and .ipynb notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",        # a copy button on every code block
]

exclude_patterns = ["_build", "_generated", "_runs", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# MyST: $...$ and $$...$$ math, \begin{align} environments, ::: fences.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks are rendered from the outputs stored in them, never re-executed.
nb_execution_mode = "off"

# -- autodoc ---------------------------------------------------------------------

autodoc_mock_imports = ["cupy", "cupyx"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# -- HTML ------------------------------------------------------------------------
#
# sphinx-book-theme: the Jupyter Book look students know from course books. Left:
# the table of contents by part (the toctree captions in index.md); right: the
# page's outline; a download button that offers each notebook page's .ipynb.

html_theme = "sphinx_book_theme"
html_title = f"minirect {release}"
html_static_path = ["_static"]
html_sourcelink_suffix = ""      # _sources/x.ipynb, not x.ipynb.txt: the download is a notebook
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}

# sphinx-copybutton: leave prompts and outputs out of what is copied.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"

# -- MathJax, shipped with the site ------------------------------------------------
#
# Formulas are typeset by MathJax 3 in the reader's browser. Rather than load it
# from a CDN (raw LaTeX on a machine without network), the build copies MathJax
# from the django-static-mathjax package (a pip dependency of the docs extra; it
# holds MathJax's distributed files and no Python code we use) into
# _static/mathjax of the output: the built site works from disk, offline.

MATHJAX_BUNDLE = "tex-mml-chtml.js"
mathjax_path = f"mathjax/{MATHJAX_BUNDLE}"      # relative: under the site's _static/


def _mathjax_dist() -> Path | None:
    """The ``es5`` folder of MathJax's distribution in django-static-mathjax, if installed."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        return None
    dist = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    return dist if (dist / MATHJAX_BUNDLE).is_file() else None


def _copy_mathjax(app) -> None:
    """Copy MathJax's bundle and the files it loads on demand into ``_static/mathjax``.

    The bundle (TeX input, CommonHTML output) loads its fonts and any TeX
    extension it meets (``\\require``, ``\\cancel``...) from the folders next to
    it, so those are copied too; the other combined bundles are not. Files
    already copied (same size and modification time) are left alone.
    """
    if app.builder.format != "html":
        return
    from sphinx.util import logging

    dist = _mathjax_dist()
    if dist is None:
        logging.getLogger(__name__).warning(
            "django-static-mathjax is not installed (pip install -e \".[docs]\"): the pages "
            "load MathJax from the network and show raw LaTeX offline")
        app.config.mathjax_path = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    sources = [dist / MATHJAX_BUNDLE] + [p for folder in sorted(dist.iterdir()) if folder.is_dir()
                                         for p in sorted(folder.rglob("*")) if p.is_file()]
    for src in sources:
        copy = target / src.relative_to(dist)
        stat = src.stat()
        if (copy.exists() and copy.stat().st_size == stat.st_size
                and copy.stat().st_mtime == stat.st_mtime):
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, copy)


# -- Notebooks: copy ../notebooks/*.ipynb into docs/notebooks/ ---------------------

def _sync_notebooks(app) -> None:
    """Mirror the repository's notebooks into ``docs/notebooks/``.

    The copies keep their modification times (so incremental builds only
    re-read changed notebooks); copies whose source is gone are deleted. The
    folder also holds a tracked page, so the glob in ``notebooks.md`` always
    matches at least one document, with zero notebooks too.
    """
    source = ROOT / "notebooks"
    target = Path(app.srcdir) / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in source.glob("*.ipynb")} if source.is_dir() else {}
    for old in target.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name, path in wanted.items():
        copy = target / name
        src_stat = path.stat()
        if (not copy.exists() or copy.stat().st_mtime != src_stat.st_mtime
                or copy.stat().st_size != src_stat.st_size):
            shutil.copy2(path, copy)


# -- Generated pages: the experiments' configuration, read from the code ------------

def _write_generated(app) -> None:
    """Write ``_generated/convergence_config.md``: the Figure 2/3 defaults as a table.

    ``reproduction.md`` includes it, so the table always shows the values in
    ``minirect.experiments.recipe`` (``DEFAULTS`` and ``FULL``). The file
    is rewritten only when its content changes (incremental builds stay quick).
    """
    from dataclasses import fields

    from minirect.experiments import recipe

    columns = [("fig2", recipe.DEFAULTS["fig2"]), ("fig3", recipe.DEFAULTS["fig3"]),
               ("fig2 --full", recipe.FULL["fig2"]), ("fig3 --full", recipe.FULL["fig3"])]
    lines = ["| setting | " + " | ".join(f"`{name}`" for name, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    rows = [(f.name, [getattr(config, f.name) for _, config in columns])
            for f in fields(recipe.Config) if f.name != "figure"]
    rows.insert(2, ("convs per stage", [config.stage_counts for _, config in columns]))
    for name, values in rows:
        cells = " | ".join(f"`{value!r}`" for value in values)
        lines.append(f"| {name} | {cells} |")
    text = "\n".join(lines) + "\n"
    target = Path(app.srcdir) / "_generated" / "convergence_config.md"
    target.parent.mkdir(exist_ok=True)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


# -- Docstrings: plain-text conventions rendered as reST ------------------------------
#
# The package's docstrings are written to be read in the source: formulas and
# code examples indented under a sentence, free-form underlined headings,
# Markdown pipe tables. reST reads those as block quotes, misplaced section
# titles and line blocks. Rather than sprinkle "::" through the package, the
# hook below rewrites them while autodoc collects them (after napoleon, which
# has already turned Parameters/Returns sections into fields).

_UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|[\s:|-]+\|\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _headings_to_rubrics(lines: list) -> list:
    """``Title`` over ``-----`` -> ``.. rubric:: Title`` (titles are not allowed here)."""
    out, i = [], 0
    while i < len(lines):
        if (i + 1 < len(lines) and lines[i].strip() and not _UNDERLINE.match(lines[i])
                and _UNDERLINE.match(lines[i + 1])
                and len(lines[i + 1].strip()) >= len(lines[i].strip())):
            out += [" " * _indent(lines[i]) + ".. rubric:: " + lines[i].strip(), ""]
            i += 2
            continue
        out.append(lines[i])
        i += 1
    return out


def _pipe_tables(lines: list) -> list:
    """A Markdown table (header, ``|---|`` rule, rows) -> a ``list-table``."""
    out, i = [], 0
    while i < len(lines):
        if (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
                and _TABLE_RULE.match(lines[i + 1])):
            pad = " " * _indent(lines[i])
            rows, j = [], i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                if j != i + 1:
                    rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            out += ["", pad + ".. list-table::", pad + "   :header-rows: 1", ""]
            for row in rows:
                for k, cell in enumerate(row):
                    out.append(pad + ("   * - " if k == 0 else "     - ") + (cell or "\\ "))
            out.append("")
            i = j
            continue
        out.append(lines[i])
        i += 1
    return out


def _indented_blocks_to_literal(lines: list) -> list:
    """An indented block after a blank line and a plain paragraph -> literal block.

    In the docstrings such blocks are code examples or formulas, whose line
    breaks and alignment matter; reST would make them block quotes and then
    stumble on their inner indentation.
    """
    out = []
    first = None          # first line of the paragraph before the current line
    last = None           # last non-blank line before the current line
    literal_above = None  # indentation that ends the literal block we are in
    for i, line in enumerate(lines):
        blank = not line.strip()
        if literal_above is not None:
            if blank or _indent(line) > literal_above:
                out.append(line)
                continue
            literal_above = None
        if blank:
            out.append(line)
            continue
        starts_paragraph = i == 0 or not lines[i - 1].strip()
        if starts_paragraph and first is not None:
            base = _indent(first)
            bullet = _BULLET.match(first)
            if bullet:
                base = len(bullet.group(0))
            head = first.lstrip()
            if _indent(line) > base:
                if last.rstrip().endswith("::"):
                    literal_above = base
                elif not head.startswith((":", "..", ">>>")):
                    out += [" " * base + "::", ""]
                    literal_above = base
                if literal_above is not None:
                    out.append(line)
                    last = line
                    continue
        if starts_paragraph:
            first = line
        last = line
        out.append(line)
    return out


def _docstring_to_rest(app, what, name, obj, options, lines) -> None:
    lines[:] = _indented_blocks_to_literal(_pipe_tables(_headings_to_rubrics(lines)))


def _write_numbers(app) -> None:
    """Write the run times and results the pages include (``docs/generate_numbers.py``, from ``_runs/``)."""
    spec = importlib.util.spec_from_file_location("minirect_docs_numbers", DOCS / "generate_numbers.py")
    numbers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(numbers)
    numbers.write(readme=False)


def _write_course_pages(app) -> None:
    """Write the course map's table and the exercise list from the exercises themselves
    (``minirect.exercises.pages``): tasks and hints, solutions in instructor-only blocks."""
    from minirect.exercises import pages

    (DOCS / "_generated").mkdir(exist_ok=True)
    pages.write(DOCS)


def setup(app):
    app.connect("builder-inited", _sync_notebooks)
    app.connect("builder-inited", _write_generated)
    app.connect("builder-inited", _write_numbers)
    app.connect("builder-inited", _write_course_pages)
    app.connect("builder-inited", _copy_mathjax)
    app.connect("autodoc-process-docstring", _docstring_to_rest, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
