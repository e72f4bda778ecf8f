"""Self-grading exercises that follow the paper and the engine.

    from minirect import exercises
    exercises.names()                        # ['mul_backward', 'div_backward', ...]
    print(exercises.describe("prelu_backward"))   # the task, the signature, the math
    def prelu_backward(x, a, gy):
        ...                                  # your NumPy code; return (gx, ga)
    exercises.check("prelu_backward", prelu_backward)   # prints a one-line verdict
    exercises.solution("prelu_backward")     # the reference, for the teacher

Every exercise is a pure function on NumPy arrays that returns its results
(a tuple when there are several). ``check`` calls it with positional
arguments in the order of the signature, on several seeded cases — float32
cases checked against minirect's own engine (its autograd backward,
``minirect.functional``, ``minirect.init``, ``minirect.optim``) and, where
the exercise is a gradient, a float64 case checked against central
differences of the forward pass. The first wrong case is reported: which
output, which element, expected and actual value, and a hint when the
mistake is a usual one (a missing sum over the batch or the positions, a
transposed weight, a flipped sign, the factor ½ of the initialization...).
The returned ``Verdict`` is truthy only when every case passed, so
``assert exercises.check(...)`` works under pytest.

Teachers grade a student's file, whose functions are named like the
exercises, with ``minirect exercises check student.py`` (see ``main``).
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys
import textwrap

from . import build, sandbox, convolution, gradients, rectifiers, training, understanding
from ._checker import Exercise, Verdict, grade

__all__ = ["names", "describe", "check", "solution", "select", "grade_file", "report", "main",
           "Verdict", "UNITS"]

_EXERCISES = {e.name: e for e in (build.EXERCISES + gradients.EXERCISES + rectifiers.EXERCISES
                                  + convolution.EXERCISES + training.EXERCISES
                                  + understanding.EXERCISES)}


def names() -> list:
    """The exercise names, from the first derivatives to the training step."""
    return list(_EXERCISES)


def _get(name: str) -> Exercise:
    try:
        return _EXERCISES[name]
    except KeyError:
        raise KeyError(f"no exercise {name!r}; exercises.names() lists them: "
                       f"{', '.join(_EXERCISES)}") from None


def describe(name: str) -> str:
    """The task, the signature to implement, and the math to derive, as text."""
    e = _get(name)
    wrap = textwrap.TextWrapper(width=88, subsequent_indent="  ")
    lines = [f"{e.name}: {e.title}  [{'★' * e.stars}, unit: {e.unit or '-'}]", "",
             wrap.fill("Task: " + e.task), "",
             ("Define: " if e.driver is not None else "Signature: def ") + e.signature]
    for number, hint in enumerate(e.hints, 1):
        lines += ["", wrap.fill(f"Hint {number}: {hint}")]
    return "\n".join(lines)


def check(name: str, fn, quiet: bool = False) -> Verdict:
    """Grade ``fn`` on every case of exercise ``name``; print and return the verdict.

    The verdict is truthy only when every case passed. Printed: one line
    (PASS, or FAIL with the case, output, element, expected and actual value),
    plus a hint line on failure. ``quiet=True`` prints nothing.
    """
    verdict = grade(_get(name), fn)
    if not quiet:
        print(verdict)
    return verdict


def start_worksheet(seed: int = 0, device: str = "cpu") -> dict:
    """A worksheet's setup: minirect's reference path (the code a student reads is the
    code that runs), the device and the seed; prints the versions. Returns the empty
    dict of verdicts the worksheet fills in."""
    import minirect
    from .. import backend
    minirect.fast_paths(False)
    minirect.use(device)
    minirect.seed(seed)
    print("minirect", minirect.__version__, minirect.versions())
    print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
          "| fast paths:", "on" if backend.fast_paths_enabled() else "off (the reference code)")
    return {}


def where_you_stand(verdicts: dict) -> None:
    """The end of a worksheet: which of its exercises pass."""
    passed = [name for name, verdict in verdicts.items() if verdict]
    print(f"{len(passed)} of {len(verdicts)} exercises pass:", ", ".join(passed) or "none yet")


def solution(name: str):
    """The reference solution (a plain NumPy function), e.g. to show with inspect.getsource."""
    return _get(name).solution


# ----------------------------------------------------------------------------
# Grading a student's file (in a separate process: see sandbox.py)
# ----------------------------------------------------------------------------

UNITS = ("autograd", "broadcasting", "convolution", "rectifiers", "initialization", "training",
         "figures", "depth-sweep")


def defined_names(path) -> set:
    """The names a Python file defines at its top level (functions, classes, assignments, imports)."""
    tree = ast.parse(pathlib.Path(path).read_bytes())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _is_defined(exercise, names: set) -> bool:
    if exercise.driver is None:
        return exercise.name in names
    return bool(exercise.requires) and all(n in names for n in exercise.requires)


def select(only=None, units=None) -> list:
    """Exercise names by name (``only``) and/or by course unit (``units``), in course order."""
    for name in only or ():
        _get(name)                           # unknown names fail before anything runs
    return [n for n in names() if (not only or n in only) and (not units or _get(n).unit in units)]


def grade_file(path, only=None, seed: int = 0, timeout: float = 20.0, memory_mb: int = 2048,
               units=None) -> dict:
    """Grade every selected exercise on the file at ``path``, each in its own child process.

    Returns {name: Verdict, or None when the file does not define it}. Raises
    ``sandbox.RefusedFile`` when the file may not be run (not Python, not found, an import of
    minirect or another refused use, with its line).
    """
    selected = select(only, units)
    sandbox.static_check(path)
    defined = defined_names(path)
    return {name: (sandbox.grade_in_child(_get(name), path, seed, timeout, memory_mb)
                   if _is_defined(_get(name), defined) else None) for name in selected}


def _missing_text(e) -> str:
    if e.driver is None:
        return f"the file defines no function {e.name}()"
    absent = ", ".join(e.requires) or e.defines
    return f"the file does not define {absent} (the task: {e.defines})"


def report(verdicts: dict, file, seed: int, refused: str = "") -> dict:
    """The machine-readable grade (``--json``): one record per exercise, and the totals."""
    records = []
    for name, verdict in verdicts.items():
        e = _get(name)
        status = ("refused" if refused else "missing" if verdict is None
                  else "pass" if verdict else "fail")
        failure = verdict.failure if verdict is not None else None
        message = (refused if refused else _missing_text(e) if verdict is None else verdict.line())
        records.append({"name": name, "title": e.title, "unit": e.unit, "stars": e.stars,
                        "status": status, "score": int(status == "pass"), "max_score": 1,
                        "message": message, "hint": failure.hint if failure else ""})
    passed = sum(r["score"] for r in records)
    return {"file": str(file), "seed": seed, "passed": passed, "total": len(records),
            "exercises": records}


def main(argv=None) -> int:
    """``minirect exercises list | describe NAME | check FILE [--only NAME ...] [--seed S] [--json OUT]``.

    ``check`` grades each exercise the file defines (``def prelu_backward(x, a, gy): ...``)
    in a separate process, prints one verdict line per selected exercise and a summary, and
    exits with 0 only when every selected exercise is defined and passes (1 otherwise, 2 for
    a usage error). ``--seed`` grades on cases the student never saw (the student's own
    checks use seed 0); ``--json`` writes the grades for a grading tool.
    """
    parser = argparse.ArgumentParser(prog="minirect exercises",
                                     description="Self-grading exercises on the paper's math.")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="the exercises, in course order")
    listing.add_argument("--unit", choices=UNITS, nargs="+", help="only these units")
    show = sub.add_parser("describe", help="the task and the hints of one exercise")
    show.add_argument("name", choices=names(), metavar="NAME")
    grade_p = sub.add_parser("check", help="grade a student's file of solutions")
    grade_p.add_argument("file", help="a .py file defining functions named like the exercises")
    grade_p.add_argument("--only", nargs="+", choices=names(), metavar="NAME",
                         help="grade only these exercises")
    grade_p.add_argument("--unit", choices=UNITS, nargs="+", help="grade only these units' exercises")
    grade_p.add_argument("--seed", type=_natural, default=0,
                         help="the cases' seed (0, the default, gives the cases students practise on)")
    grade_p.add_argument("--timeout", type=float, default=20.0, help="seconds per exercise (default 20)")
    grade_p.add_argument("--memory", type=int, default=2048, help="MiB per exercise (default 2048)")
    grade_p.add_argument("--json", metavar="OUT", help="write the grades as JSON to OUT ('-': stdout)")
    start = sub.add_parser("template", help="a file to start from: stubs with their tasks")
    start.add_argument("file", help="the file to write (refused if it exists)")
    start.add_argument("--only", nargs="+", choices=names(), metavar="NAME", help="these exercises")
    start.add_argument("--unit", choices=UNITS, nargs="+", help="these units' exercises")
    start.add_argument("--engine", action="store_true",
                       help="the build-it-yourself track's engine.py (units 1-2) instead")
    hand_out = sub.add_parser("assignment", help="an Otter-Grader assignment: tests/ and student.py")
    hand_out.add_argument("folder", help="where to write tests/, student.py and README.md")
    hand_out.add_argument("--only", nargs="+", choices=names(), metavar="NAME", help="these exercises")
    hand_out.add_argument("--unit", choices=UNITS, nargs="+", help="these units' exercises")
    hand_out.add_argument("--seed", type=_natural, required=True,
                          help="the grading seed (keep it secret: the student practises on seed 0)")
    if argv and argv[0] == "train":
        from .capstone import main as capstone_main
        return capstone_main(argv[1:])
    args = parser.parse_args(argv)
    if args.action == "list":
        for name in select(units=args.unit):
            e = _get(name)
            print(f"{name:34s} {'★' * e.stars:3s} {e.unit:15s} {e.title}")
        return 0
    if args.action == "describe":
        print(describe(args.name))
        return 0
    if args.action == "assignment":
        return _assignment_command(args)
    if args.action == "template":
        return _template_command(args)
    return _check_command(args)


def student_template(selected) -> str:
    """A student's file: one stub per selected exercise, with its task as the docstring."""
    wrap = textwrap.TextWrapper(width=84, initial_indent="    ", subsequent_indent="    ")
    parts = ['"""My answers (graded by: minirect exercises check student.py)."""\n\nimport numpy as np\n']
    for name in selected:
        e = _get(name)
        if e.driver is not None:
            parts.append(f"# {name}: {e.title}. Define: {e.signature}\n")
            continue
        parts.append(f"def {e.signature.split(' -> ')[0]}:\n    \"\"\"{e.title}.\n\n"
                     + wrap.fill(e.task) + f"\n\n    Returns ({', '.join(e.outputs)}).\n    \"\"\"\n"
                     f"    raise NotImplementedError(\"{name}\")\n")
    return "\n\n".join(parts)


def _template_command(args) -> int:
    target = pathlib.Path(args.file)
    if target.exists():
        print(f"minirect exercises: {target} exists; choose another name (nothing written)",
              file=sys.stderr)
        return 2
    if args.engine:
        target.write_text(build.TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
        print(f"wrote {target}: fill in the tasks, then: minirect exercises check {target} "
              "--unit autograd broadcasting")
        return 0
    selected = [n for n in select(args.only, args.unit) if _get(n).driver is None]
    target.write_text(student_template(selected), encoding="utf-8")
    print(f"wrote {target} ({len(selected)} stubs): fill them in, then: minirect exercises check {target}")
    return 0


def _assignment_command(args) -> int:
    from . import otter
    selected = [n for n in select(args.only, args.unit) if _get(n).driver is None]
    folder = pathlib.Path(args.folder)
    otter.write_tests(folder / "tests", selected, args.seed)
    (folder / "student.py").write_text(student_template(selected))
    (folder / "README.md").write_text(
        f"# Assignment: {len(selected)} exercises\n\n" + "\n".join(f"- `{n}`: {_get(n).title}"
                                                                  for n in selected)
        + "\n\nHand out `student.py`. Grade with Otter-Grader (`pip install -e \".[grading]\"`):\n\n"
        "```bash\notter generate -t tests\notter run -a autograder.zip path/to/student.py\n```\n\n"
        "`autograder.zip` holds the grading seed: do not hand it out.\n")
    print(f"wrote {folder}/tests ({len(selected)} Otter tests, seed {args.seed}), {folder}/student.py, "
          f"{folder}/README.md\nnext: cd {folder} && otter generate -t tests && "
          "otter run -a autograder.zip student.py")
    return 0


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _check_command(args) -> int:
    refused = ""
    try:
        verdicts = grade_file(args.file, args.only, args.seed, args.timeout, args.memory, args.unit)
    except sandbox.RefusedFile as error:
        refused = f"refused: {error}"
        verdicts = dict.fromkeys(select(args.only, args.unit))
        print(f"minirect exercises: {refused}", file=sys.stderr)
    grades = report(verdicts, args.file, args.seed, refused)
    for record, verdict in zip(grades["exercises"], verdicts.values()):
        if record["status"] == "pass" or record["status"] == "fail":
            print(verdict)
        else:
            print(f"{record['status'].upper()} {record['name']}: {record['message']}")
    missing = sum(r["status"] == "missing" for r in grades["exercises"])
    print(f"{grades['passed']} of {grades['total']} exercises passed"
          + (f", {missing} missing" if missing else ""))
    if args.json:
        text = json.dumps(grades, indent=1)
        print(text) if args.json == "-" else pathlib.Path(args.json).write_text(text + "\n")
    return 0 if grades["passed"] == grades["total"] and grades["total"] else 1
