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
import importlib.util
import pathlib
import sys
import textwrap

from . import build, convolution, gradients, rectifiers, training, understanding
from ._checker import Exercise, Verdict, grade

__all__ = ["names", "describe", "check", "solution", "grade_file", "main", "Verdict"]

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
    lines = [f"{e.name}: {e.title}  [{'*' * e.stars}, unit: {e.unit or '-'}]", "",
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


def solution(name: str):
    """The reference solution (a plain NumPy function), e.g. to show with inspect.getsource."""
    return _get(name).solution


# ----------------------------------------------------------------------------
# Grading a student's file from the command line
# ----------------------------------------------------------------------------

def load_file(path):
    """Import a Python file as a module (its folder is importable while it loads)."""
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_minirect_student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def grade_file(path, only=None) -> dict:
    """Check every exercise function defined in the file at ``path``.

    Returns {name: Verdict or None}; None when the file defines no function of
    that name. ``only`` restricts the grading to the listed exercise names.
    """
    selected = list(only) if only else names()
    for name in selected:
        _get(name)                           # unknown names fail before the file runs
    module = load_file(path)
    return {name: (check(name, getattr(module, name)) if callable(getattr(module, name, None))
                   else None) for name in selected}


def main(argv=None) -> int:
    """``minirect exercises list`` and ``minirect exercises check FILE [--only NAME ...]``.

    ``check`` imports FILE, grades each function whose name is an exercise
    name (``def prelu_backward(x, a, gy): ...``), prints one verdict per
    exercise and a summary, and exits with 0 only when every selected
    exercise is defined and passes (1 otherwise, 2 for a usage error).
    """
    parser = argparse.ArgumentParser(prog="minirect exercises",
                                     description="Self-grading exercises on the paper's math.")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the exercises, in order")
    show = sub.add_parser("describe", help="the task and the math of one exercise")
    show.add_argument("name", choices=names(), metavar="NAME")
    grade_p = sub.add_parser("check", help="grade a student's file of solutions")
    grade_p.add_argument("file", help="a .py file defining functions named like the exercises")
    grade_p.add_argument("--only", nargs="+", choices=names(), metavar="NAME",
                         help="grade only these exercises")
    args = parser.parse_args(argv)
    if args.action == "list":
        for name in names():
            print(f"{name:32s} {_get(name).title}")
        return 0
    if args.action == "describe":
        print(describe(args.name))
        return 0
    try:
        verdicts = grade_file(args.file, args.only)
    except (FileNotFoundError, SyntaxError, ImportError) as error:
        print(f"minirect exercises: cannot load {args.file}: {error}", file=sys.stderr)
        return 1
    missing = [n for n, v in verdicts.items() if v is None]
    for name in missing:
        print(f"MISSING {name}: {args.file} defines no function {name}()")
    passed = sum(1 for v in verdicts.values() if v)
    print(f"{passed} of {len(verdicts)} exercises passed" + (f", {len(missing)} missing" if missing else ""))
    return 0 if passed == len(verdicts) else 1
