"""The course: its map, its worksheets, its generated pages, and student material without solutions."""

import ast
import json
import pathlib
import re
import subprocess
import sys

import pytest

from minirect import exercises
from minirect.exercises import build_reference, pages

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"


def correct_student_file(path: pathlib.Path) -> pathlib.Path:
    """A file with a correct answer to every exercise: the reference solutions' functions (plain
    NumPy) and the reference engine of the build-it-yourself track, as a student would hand in."""
    sources = {pathlib.Path(exercises.solution(n).__code__.co_filename) for n in exercises.names()
               if exercises._get(n).driver is None}
    parts = ["import math\n\nimport numpy as np\n"]
    for source in sorted(sources):
        text = source.read_text(encoding="utf-8")
        parts += [ast.get_source_segment(text, node) for node in ast.parse(text).body
                  if isinstance(node, ast.FunctionDef)]
    engine = pathlib.Path(build_reference.__file__).read_text(encoding="utf-8")
    parts += [ast.get_source_segment(engine, node) for node in ast.parse(engine).body
              if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != "sum_to"]
    path.write_text("\n\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def test_a_correct_student_file_passes_every_exercise(tmp_path, capsys):
    path = correct_student_file(tmp_path / "student.py")
    assert exercises.main(["check", str(path), "--seed", "31", "--json", str(tmp_path / "g.json")]) == 0
    grades = json.loads((tmp_path / "g.json").read_text())
    assert grades["passed"] == grades["total"] == len(exercises.names()) >= 25
    total = grades["total"]
    assert capsys.readouterr().out.strip().endswith(f"{total} of {total} exercises passed")


def test_the_course_has_enough_exercises_that_ask_for_understanding():
    all_ = [exercises._get(n) for n in exercises.names()]
    assert len(all_) >= 25
    assert sum(e.kind == "derive" and e.stars >= 2 for e in all_) >= 10
    assert {e.unit for e in all_} <= set(exercises.UNITS)
    for unit in exercises.UNITS[:7]:
        assert sum(e.unit == unit for e in all_) >= 2, f"unit {unit} has fewer than two exercises"


# -- Worksheets: each unit's exercises at the end of the unit, no solutions -------------------

def _worksheet(unit):
    number = exercises.UNITS.index(unit) + 1
    return NOTEBOOKS / f"u{number}_{unit.replace('-', '_')}_exercises.py"


@pytest.mark.parametrize("unit", exercises.UNITS)
def test_each_unit_has_a_worksheet_with_its_exercises(unit):
    text = _worksheet(unit).read_text(encoding="utf-8")
    assert "exercises.start_worksheet(SEED, DEVICE)" in text     # the reference path (tested below)
    for name in exercises.select(units=[unit]):
        if exercises._get(name).driver is None:
            assert f'exercises.check("{name}", {name})' in text.replace('check(\n    "', 'check("'), \
                f"{_worksheet(unit).name} does not check {name}"
            assert f"def {name}(" in text and "raise NotImplementedError" in text


LESSONS = ["01_autograd", "02_convolution", "03_prelu", "04_initialization",
           "04b_initialization_small_maps", "09_build_your_engine"]


@pytest.mark.parametrize("notebook", LESSONS)
def test_the_lessons_run_the_reference_path(notebook):
    """docs/course.md: the lessons switch the fast paths off in their setup, for the whole notebook."""
    lines = (NOTEBOOKS / f"{notebook}.py").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("minirect.fast_paths(False)") for line in lines), notebook
    assert "lesson notebooks 01–04b" in (ROOT / "docs" / "course.md").read_text(encoding="utf-8")


def test_the_build_track_notebook_checks_every_build_exercise():
    text = (NOTEBOOKS / "09_build_your_engine.py").read_text(encoding="utf-8")
    for name in exercises.names():
        if exercises._get(name).driver is not None:
            assert f'"{name}"' in text, f"09_build_your_engine does not check {name}"


def _solution_lines():
    """Distinctive lines of every reference solution (a notebook must not carry them)."""
    lines = set()
    for name in exercises.names():
        e = exercises._get(name)
        if e.driver is not None:
            continue
        import inspect
        body = inspect.getsource(e.solution).splitlines()[1:]
        lines |= {ln.strip() for ln in body if len(ln.strip()) > 30 and not ln.strip().startswith(('"', "#"))
                  and not re.fullmatch(r"return [\w, ]+", ln.strip())}    # naming the outputs is no answer
    return lines


def test_student_notebooks_carry_no_solutions():
    solution_lines = _solution_lines()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        text = "\n".join("".join(c.get("source", "")) + "\n" + json.dumps(c.get("outputs", []))
                         for c in nb["cells"])
        assert "exercises.solution(" not in text, f"{path.name} shows exercises.solution"
        assert not re.search(r"SHOW_SOLUTIONS\s*=\s*True", text), f"{path.name} ships with solutions on"
        leaked = [ln for ln in solution_lines if ln in text]
        assert not leaked, f"{path.name} carries reference solution code: {leaked[:3]}"


# -- The documentation ---------------------------------------------------------------------

def test_the_course_map_is_the_first_page_of_the_docs():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    first_toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    entries = [ln.strip() for ln in first_toctree.splitlines() if ln.strip() and not ln.startswith(":")]
    assert entries[0] == "course"
    course = (DOCS / "course.md").read_text(encoding="utf-8")
    for unit, (readings, notebooks) in pages.COURSE.items():
        assert pages.UNIT_TITLES[unit].split(":")[0].replace(" (optional)", "") in course
        for notebook in notebooks:
            assert (NOTEBOOKS / f"{notebook}.py").is_file(), f"the course names a missing notebook {notebook}"
        for reading in readings:
            assert (DOCS / f"{reading}.md").is_file()


def test_docs_give_tasks_and_hints_and_keep_solutions_for_the_instructor_build():
    generated = pages.markdown()
    for name in exercises.names():
        e = exercises._get(name)
        assert f"`{name}`" in generated and pages._text(e.task) in generated
        for hint in e.hints:
            assert pages._text(hint) in generated
    # every solution sits inside an instructor-only block
    blocks = generated.split("````{only} instructor")
    assert len(blocks) - 1 == len(exercises.names())
    outside = "".join(b.split("````", 1)[-1] for b in blocks[1:]) + blocks[0]
    assert "literalinclude" not in outside and "**Solution.**" not in outside


@pytest.mark.slow
def test_instructor_build_shows_solutions_and_the_student_build_does_not(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    marker = "not_channel = (0,) + tuple(range(2, x.ndim))"     # a line of prelu_backward's solution
    for tags, expected in (([], False), (["-t", "instructor"], True)):
        out = tmp_path / ("instructor" if tags else "student")
        command = [sys.executable, "-m", "sphinx", "-q", *tags, "-b", "html", str(DOCS), str(out)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        html = (out / "exercises.html").read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", "", html).replace("&gt;", ">")
        assert (marker in text) is expected, f"{out.name} build: solution shown = {marker in text}"


def test_a_worksheet_runs_the_reference_path(capsys):
    import minirect
    from minirect import backend
    with minirect.fast_paths(True):
        assert exercises.start_worksheet(3) == {}
        assert not backend.fast_paths_enabled()
        assert "fast paths: off" in capsys.readouterr().out
        exercises.where_you_stand({"a": exercises.check("relu_backward", lambda x, gy: gy * (x > 0))})
        assert "1 of 1 exercises pass: a" in capsys.readouterr().out
