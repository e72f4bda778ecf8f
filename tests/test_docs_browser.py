"""The built documentation in a real browser, offline: formulas typeset, figures load.

Builds the docs, opens pages from disk in headless Chromium with every
network request refused, waits for MathJax and checks what a reader sees:
each formula was typeset (no raw LaTeX left in the visible text, no TeX
error), MathJax's fonts loaded, every figure decoded, and the search page
finds results. A screenshot of each page is written to
``docs/_build/screenshots/`` for people to look at.

Needs Chromium (Debian: ``apt-get install chromium``; or set
``MINIRECT_CHROMIUM`` to a Chromium/Chrome binary) and the ``playwright``
package of the test extra, which drives the installed browser (no browser
download). Skipped with the reason when either is missing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCREENSHOTS = DOCS / "_build" / "screenshots"

DERIVATIONS = ["conventions", "elementwise", "reductions", "matmul", "conv", "activations", "softmax",
               "dropout", "initialization"]
# page -> (must it have formulas, the fewest figures it must show); every formula and
# figure a page has is checked either way
PAGES = {f"derivations/{name}": (True, 0) for name in DERIVATIONS}
PAGES.update({"reproduction": (True, 4), "notebooks/04_initialization": (True, 1),
              "coming-from-pytorch": (False, 0)})

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _find_chromium():
    candidates = [os.environ.get("MINIRECT_CHROMIUM", "")]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "google-chrome",
                                                   "google-chrome-stable")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


CHROMIUM = _find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium, "
                                                "or set MINIRECT_CHROMIUM): the docs' browser check "
                                                "needs one"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh build of the documentation (HTML), as the README's command makes it."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    return out


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is missing (pip install -e \".[test]\")")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                                     chromium_sandbox=False)
        yield chromium
        chromium.close()


class _Page:
    """A page opened from disk with the network cut off; requests that tried to leave are kept."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.network = []           # requests that left the site's files (all refused)
        self.page.route(lambda url: not url.startswith(("file:", "data:", "blob:")), self._refuse)
        self.page.goto(url, wait_until="load")

    def _refuse(self, route):
        self.network.append(route.request.url)
        route.abort()

    def wait_for_mathjax(self):
        try:
            self.page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise",
                                        timeout=30_000)
        except Exception as error:      # playwright's TimeoutError
            script = self.js("(document.querySelector('script[src*=\"mathjax\"]') || {}).src || null")
            pytest.fail(f"MathJax did not start within 30 s on {self.page.url} (script: {script}; "
                        f"refused network requests: {self.network[:3]}): {type(error).__name__}")
        self.page.evaluate("MathJax.startup.promise.then(() => true)")
        self.page.evaluate("document.fonts.ready.then(() => true)")

    def js(self, expression):
        return self.page.evaluate(expression)


MATH_STATE = """() => {
  const math = Array.from(document.querySelectorAll('.math'));
  return {
    formulas: math.length,
    untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    typeset: document.querySelectorAll('mjx-container').length,
    errors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
                .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
    // an undefined macro is typeset as its name in red text: \\foo
    undefined: Array.from(document.querySelectorAll('mjx-assistive-mml mtext'))
                .map(e => e.textContent).filter(t => t.startsWith(String.fromCharCode(92))).slice(0, 5),
    fontsFailed: Array.from(document.fonts).filter(f => f.status === 'error').map(f => f.family),
    script: (document.querySelector('script[src*="mathjax"]') || {}).src || null,
    text: document.body.innerText,
  };
}"""

FIGURES = """() => Array.from(document.querySelectorAll('article img, main img')).map(
  img => ({src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0}))"""


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_renders_offline(site, browser, page):
    needs_math, min_figures = PAGES[page]
    html = site / f"{page}.html"
    assert html.is_file(), f"{page}.html was not built"
    view = _Page(browser, html.as_uri())
    try:
        if needs_math or view.js("document.querySelectorAll('.math').length") > 0:
            view.wait_for_mathjax()
        state = view.js(MATH_STATE)
        figures = view.js(FIGURES)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        view.page.screenshot(path=str(SCREENSHOTS / (page.replace("/", "_") + ".png")), full_page=True)
    finally:
        view.page.close()

    assert not view.network, f"{page}: the page tried to reach the network: {view.network[:5]}"
    if needs_math:
        assert state["formulas"] > 0, f"{page}: no formulas found (is the page still built with math?)"
    if state["formulas"]:
        assert state["script"] and state["script"].startswith("file:"), \
            f"{page}: MathJax is not loaded from the site itself: {state['script']}"
    assert not state["untypeset"], f"{page}: formulas left untypeset: {state['untypeset'][:5]}"
    assert not state["errors"], f"{page}: MathJax reported TeX errors: {state['errors']}"
    assert not state["undefined"], f"{page}: undefined TeX macros: {state['undefined']}"
    assert not state["fontsFailed"], f"{page}: fonts failed to load: {state['fontsFailed']}"
    for raw in ("\\begin", "\\frac", "\\(", "\\[", "$$"):
        assert raw not in state["text"], f"{page}: raw LaTeX {raw!r} in the visible text"
    broken = [f["src"] for f in figures if not f["ok"]]
    assert not broken, f"{page}: figures that did not load: {broken}"
    assert len(figures) >= min_figures, f"{page}: {len(figures)} figures, expected {min_figures}+"


def test_search_works_offline(site, browser):
    view = _Page(browser, (site / "search.html").as_uri() + "?q=" + quote("PReLU"))
    try:
        # Sphinx lists the hits one by one, then writes the summary ("Search finished, ...")
        view.page.wait_for_function(
            "(document.querySelector('#search-results .search-summary') || {}).textContent",
            timeout=30_000)
        hits = view.js("Array.from(document.querySelectorAll('#search-results ul.search li a'))"
                       ".map(a => a.getAttribute('href'))")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        view.page.screenshot(path=str(SCREENSHOTS / "search.png"))
    finally:
        view.page.close()
    assert not view.network, f"search tried to reach the network: {view.network[:5]}"
    assert any("derivations/activations" in h for h in hits), f"PReLU's derivation not found: {hits}"


def test_code_blocks_have_copy_buttons(site, browser):
    view = _Page(browser, (site / "getting-started.html").as_uri())
    try:
        view.page.wait_for_selector("button.copybtn", state="attached", timeout=30_000)
        blocks = view.js("document.querySelectorAll('div.highlight pre').length")
        buttons = view.js("document.querySelectorAll('button.copybtn').length")
    finally:
        view.page.close()
    assert blocks > 0 and buttons == blocks, f"{buttons} copy buttons for {blocks} code blocks"
