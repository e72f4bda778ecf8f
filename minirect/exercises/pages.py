"""The exercise list of the documentation, written from the exercises themselves.

    python -m minirect.exercises.pages docs     # docs/_generated/exercises.md, course_units.md

The page gives, unit by unit, each exercise's task, signature and hints; the
reference solutions sit in ``{only} instructor`` blocks, so they appear only
in the instructor build of the docs (``sphinx-build -t instructor``), never in
the student's. ``tests/test_course.py`` fails when the stored page is stale.
"""

from __future__ import annotations

import inspect
import json
import pathlib
import re
import sys

from . import UNITS, _get, names

UNIT_TITLES = {"autograd": "Unit 1: autograd", "broadcasting": "Unit 2: broadcasting and matmul",
               "convolution": "Unit 3: convolution, pooling and SPP",
               "rectifiers": "Unit 4: rectifiers and PReLU", "initialization": "Unit 5: initialization",
               "training": "Unit 6: SGD and training", "figures": "Unit 7: Figures 2 and 3",
               "depth-sweep": "Unit 8 (optional): the depth sweep"}
KIND = {"code": "write code", "derive": "derive, then compute"}

# The course's units: the derivation pages to read (docs/...) and the notebooks to run.
COURSE = {
    "autograd": (("derivations/conventions", "derivations/elementwise", "derivations/reductions"),
                 ("01_autograd", "09_build_your_engine", "u1_autograd_exercises")),
    "broadcasting": (("derivations/matmul",), ("u2_broadcasting_exercises",)),
    "convolution": (("derivations/conv",), ("02_convolution", "u3_convolution_exercises")),
    "rectifiers": (("derivations/activations",), ("03_prelu", "u4_rectifiers_exercises")),
    "initialization": (("derivations/initialization",),
                       ("04_initialization", "u5_initialization_exercises")),
    "training": (("derivations/softmax", "derivations/dropout"), ("u6_training_exercises",)),
    "figures": (("reproduction",), ("05_figure2_22_layers", "06_figure3_30_layers",
                                    "u7_figures_exercises")),
    "depth-sweep": (("depth-sweep",), ("08_depth_sweep", "u8_depth_sweep_exercises")),
}
WORDS_PER_MINUTE = 100          # derivation pages are dense with math


def _source_reference(e) -> str:
    """A literalinclude of the reference solution (its path relative to docs/exercises.md)."""
    target = e.solution                  # a function, or for build tasks the reference engine's module
    path = pathlib.Path(inspect.getsourcefile(target))
    package = pathlib.Path(__file__).resolve().parents[1]
    relative = "../minirect/" + path.resolve().relative_to(package).as_posix()
    if inspect.ismodule(target):
        return f"```{{literalinclude}} {relative}\n:language: python\n```"
    return f"```{{literalinclude}} {relative}\n:language: python\n:pyobject: {target.__name__}\n```"


def _text(words: str) -> str:
    """An exercise's text as Markdown: brackets and stars are the math's, not links or emphasis."""
    return words.replace("[", "\\[").replace("]", "\\]").replace("*", "\\*")


def markdown() -> str:
    """The page's text: a table of every exercise, then each unit's tasks and hints."""
    lines = ["<!-- written by: python -m minirect.exercises.pages docs -->", "",
             "| unit | exercise | level | kind | title |", "|---|---|---|---|---|"]
    for name in names():
        e = _get(name)
        lines.append(f"| {e.unit} | `{name}` | {'★' * e.stars} | {KIND[e.kind]} | {_text(e.title)} |")
    for unit in UNITS:
        unit_names = [n for n in names() if _get(n).unit == unit]
        if not unit_names:
            continue
        lines += ["", f"### {UNIT_TITLES[unit]}"]
        for name in unit_names:
            e = _get(name)
            lines += ["", f"#### `{name}`: {_text(e.title)} ({'★' * e.stars})", "", _text(e.task), "",
                      ("Define: " if e.driver is not None else "Signature: ") + f"`{e.signature}`"]
            lines += [""] + [f"{k}. {_text(hint)}" for k, hint in enumerate(e.hints, 1)] if e.hints else []
            lines += ["", "````{only} instructor", "**Solution.** " + _text(e.math), "",
                      _source_reference(e), "````"]
    return "\n".join(lines) + "\n"


def _reading_minutes(docs: pathlib.Path, pages) -> int:
    words = 0
    for page in pages:
        text = (docs / f"{page}.md").read_text(encoding="utf-8")
        words += len(re.findall(r"\w+", re.sub(r"```.*?```", " ", text, flags=re.S)))
    return max(1, round(words / WORDS_PER_MINUTE))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _minutes(low: float, high: float) -> str:
    if high < 60:
        return f"{high:.0f} s"
    text = f"{low / 60:.1f}" if round(low / 6) == round(high / 6) else f"{low / 60:.1f}–{high / 60:.1f}"
    return text + " min"


def course_table(docs) -> str:
    """The course map's table: per unit the reading, notebooks, exercises and times."""
    docs = pathlib.Path(docs)
    measured = docs / "_runs" / "notebook_times.json"
    times = json.loads(measured.read_text(encoding="utf-8"))["seconds"] if measured.is_file() else {}
    lines = ["<!-- written by: python -m minirect.exercises.pages docs -->", "",
             "| unit | read | notebooks | exercises | notebooks' run time | reading |",
             "|---|---|---|---|---|---|"]
    for unit, (pages, notebooks) in COURSE.items():
        unit_exercises = [_get(n) for n in names() if _get(n).unit == unit]
        levels = " ".join(f"{sum(e.stars == s for e in unit_exercises)}×{'★' * s}" for s in (1, 2, 3)
                          if any(e.stars == s for e in unit_exercises))
        # a notebook measured several times has a range [fastest, slowest]
        low = sum(min(_as_list(times.get(nb, 0.0))) for nb in notebooks)
        high = sum(max(_as_list(times.get(nb, 0.0))) for nb in notebooks)
        missing = [nb for nb in notebooks if nb not in times]
        lines.append(f"| {UNIT_TITLES[unit]} | " + ", ".join(f"{{doc}}`{p}`" for p in pages) + " | "
                     + ", ".join(f"`{nb}`" for nb in notebooks) + f" | {len(unit_exercises)} ({levels}) | "
                     + (_minutes(low, high) if not missing else "not measured")
                     + f" | about {_reading_minutes(docs, pages)} min |")
    return "\n".join(lines) + "\n"


def write(docs) -> None:
    """Write both generated pages into ``docs/_generated/``."""
    docs = pathlib.Path(docs)
    (docs / "_generated" / "exercises.md").write_text(markdown(), encoding="utf-8")
    (docs / "_generated" / "course_units.md").write_text(course_table(docs), encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1])
