"""Grading an assignment with Otter-Grader, one Otter test per exercise.

    minirect exercises assignment hw1 --unit rectifiers --seed 4242
    cd hw1 && otter generate -t tests            # autograder.zip (the seed stays inside it)
    otter run -a autograder.zip student.py        # or upload autograder.zip to Gradescope

Otter runs the student's ``student.py`` and then the test files; each test
here ignores Otter's environment and calls ``minirect exercises check`` on the
submitted file, in a separate Python process, with the teacher's seed (cases
the student never saw). The first test grades every exercise at once and keeps
the JSON report; each test then passes or fails with minirect's one-line
verdict and hint as Otter's message. Why Otter: it grades a plain ``.py``
submission as well as a notebook, its tests are Python files, and ``otter
run`` grades locally with no database or server (nbgrader needs a course
folder and a gradebook database).

Otter executes the submission in its own process before the tests, so grade
untrusted submissions in Otter's container (``otter grade``, Gradescope), as
Otter recommends; minirect's own checks run in a child process inside it.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import subprocess
import sys
import tempfile

TEST_FILE = '''OK_FORMAT = False

from otter.test_files import test_case

name = {name!r}
points = {points}


@test_case(points={points}, hidden=False)
def test_{name}(env):
    from minirect.exercises.otter import check
    check({name!r}, seed={seed}, selected={selected!r})
'''

_reports = {}          # (file, mtime, seed, selection) -> the JSON report of minirect exercises check


def write_tests(folder, names, seed: int, points: int = 1) -> list:
    """One Otter test file per exercise into ``folder``; returns their paths."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.py"
        path.write_text(TEST_FILE.format(name=name, points=points, seed=seed, selected=list(names)))
        paths.append(path)
    return paths


def submission() -> str:
    """The submitted .py file in Otter's working folder (the submission folder)."""
    files = [f for f in glob.glob("*.py") if f != "__init__.py"]
    if len(files) != 1:
        raise AssertionError(f"expected one .py file in the submission, found {sorted(files)}")
    return files[0]


def report(path, seed: int, selected: list) -> dict:
    """``minirect exercises check`` on ``path`` as JSON, run once per file, seed and selection."""
    key = (os.path.abspath(path), os.path.getmtime(path), seed, tuple(selected))
    if key not in _reports:
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "grades.json")
            subprocess.run([sys.executable, "-I", "-m", "minirect.cli", "exercises", "check", path,
                            "--seed", str(seed), "--json", out, "--only", *selected],
                           capture_output=True, text=True, check=False)
            _reports[key] = json.loads(pathlib.Path(out).read_text())
    return _reports[key]


def check(name: str, seed: int, selected: list) -> None:
    """Pass, or fail with minirect's verdict and hint (an Otter test case)."""
    grades = report(submission(), seed, selected)
    record = next(r for r in grades["exercises"] if r["name"] == name)
    if record["status"] != "pass":
        hint = f"\nhint: {record['hint']}" if record["hint"] else ""
        raise AssertionError(record["message"] + hint)
