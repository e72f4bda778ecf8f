"""One number, one place: the run times and results that the README and the
documentation quote are generated from stored runs (docs/generate_numbers.py reads
docs/_runs/ and benchmarks/results/), and no page states them by hand."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _numbers():
    spec = importlib.util.spec_from_file_location("minirect_docs_numbers", DOCS / "generate_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_numbers_are_up_to_date():
    # docs/_generated/ is written when the documentation is built (docs/conf.py), so the pages
    # always show the stored runs; the README, read as it is committed, carries a copy.
    numbers = _numbers()
    rendered = numbers.render()
    for path, text in rendered.items():
        assert text.strip(), f"{path.name}: nothing generated"
    readme = ROOT / "README.md"
    assert readme.read_text(encoding="utf-8") == rendered[readme], (
        "README.md's generated numbers are stale: run `python docs/generate_numbers.py` "
        "(after storing the new run in docs/_runs/) and commit the README")


def test_every_stored_run_names_its_machine_commit_and_command():
    numbers = _numbers()
    for folder in sorted(p for p in numbers.RUNS.iterdir() if p.is_dir()):
        meta = numbers._meta(folder.name)
        for key in ("command", "machine", "commit", "date"):
            assert meta.get(key), f"docs/_runs/{folder.name}/run.json has no {key}"
        assert re.fullmatch(r"[0-9a-f]{7,40}", meta["commit"]), meta["commit"]


def test_every_generated_piece_is_included_by_a_page():
    numbers = _numbers()
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md")
                      if "_generated" not in p.parts and "_build" not in p.parts)
    for name in numbers.PIECES:
        assert re.search(rf"```{{include}} (\.\./)?_generated/{re.escape(name)}\n", pages), (
            f"no page includes docs/_generated/{name}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert numbers.README_BEGIN in readme and numbers.README_END in readme


# The pages whose run times and results come from docs/_generated: outside the generated
# parts they quote no run time (a number of seconds or minutes).
PAGES = ["README.md", "docs/reproduction.md", "docs/getting-started.md", "docs/depth-sweep.md",
         "docs/notebooks/00_running.md"]
RUN_TIME = re.compile(r"\b\d[\d,.]*\s?(?:s|sec|seconds|min|minutes)\b|\bminutes?\b")


def _by_hand(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    numbers = _numbers()
    if numbers.README_BEGIN in text:
        head, rest = text.split(numbers.README_BEGIN, 1)
        text = head + rest.split(numbers.README_END, 1)[1]
    return re.sub(r"```.*?```", "", text, flags=re.S)     # code blocks and include directives


def test_pages_quote_no_run_time_by_hand():
    for path in PAGES:
        found = RUN_TIME.findall(_by_hand(path))
        assert not found, (f"{path} quotes run times by hand: {found}; "
                           "generate them (docs/generate_numbers.py)")


def test_no_stale_copies_of_the_old_numbers():
    # numbers that disagreed from page to page before they were generated
    for path in PAGES + ["docs/derivations/initialization.md"]:
        text = _by_hand(path)
        for old in ("42–59", "42–60", "187 s", "823 s", "269 s", "--cuda-graph`, which"):
            assert old not in text, f"{path} still quotes {old!r} by hand"


def test_every_notebook_has_a_measured_run_time():
    import json

    times = json.loads((DOCS / "_runs" / "notebook_times.json").read_text(encoding="utf-8"))["seconds"]
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    missing = [name for name in notebooks if name not in times]
    assert not missing, (f"docs/_runs/notebook_times.json has no run time for {missing}: execute them "
                         "and add the seconds (docs/notebooks/00_running.md shows the table)")
