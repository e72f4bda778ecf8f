"""Grading a student's file in a separate process: ``minirect exercises check student.py``.

Three rules make a grade something a teacher can trust:

1. **Own code only.** Before anything runs, the file (and every module of the
   student's it imports) is read as a syntax tree: the allowed imports are
   NumPy, the standard library's ``math`` and the student's own modules in the
   same folder; ``exec``/``eval``/``open``/``__import__`` and the attributes
   that reach into other modules' internals (``__globals__``, ``__dict__``...)
   are refused with the line that uses them. So an answer cannot come from
   ``exercises.solution``, from minirect's autograd or from its source.
2. **The grader is out of reach.** Each exercise runs in a child process
   (``sandbox_child.py``) with a time and a memory limit, where ``import
   minirect`` fails. The child gets the case's arguments and sends back the
   student's outputs as plain arrays; the expected values and the comparison
   stay in this process, which the student's code cannot patch.
3. **Every failure is a grade.** A missing function, an infinite loop, a
   call to ``exit()``, complex or non-finite values, a file that is not
   Python: each becomes a FAIL with a one-line reason, never a crash.

The rules guard against shortcuts, not against a determined attacker with
the run of the machine: grade untrusted submissions in a container as well.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from ._checker import CaseResult, Exercise, Verdict, cases_for, judge, np

CHILD = pathlib.Path(__file__).with_name("sandbox_child.py")
DRIVERS = pathlib.Path(__file__).with_name("drivers.py")

ALLOWED_IMPORTS = {"numpy", "numpy.linalg", "numpy.random", "math", "__future__"}
REFUSED_NAMES = {"exec", "eval", "compile", "__import__", "open", "globals", "locals", "vars",
                 "getattr", "setattr", "delattr", "breakpoint", "input", "__builtins__",
                 "__loader__", "__spec__", "__file__"}
# Attributes that reach a module's internals or the file system (NumPy's loaders).
REFUSED_ATTRIBUTES = {"__globals__", "__builtins__", "__subclasses__", "__code__", "__loader__",
                      "__spec__", "__import__", "__bases__", "__base__", "__mro__", "__closure__",
                      "__func__", "__dict__", "__file__", "__path__", "__module__", "f_globals",
                      "f_back", "gi_frame", "tb_frame", "load", "loadtxt", "genfromtxt",
                      "fromfile", "memmap", "ctypeslib", "f2py", "distutils", "testing",
                      "DataSource", "sys", "os"}


class RefusedFile(Exception):
    """The student's file breaks rule 1 (or is not a Python file); the message says where."""


# ----------------------------------------------------------------------------
# Rule 1: read the file before running it
# ----------------------------------------------------------------------------

def static_check(path, _seen=None) -> None:
    """Raise ``RefusedFile`` naming the first refused import, name or attribute, with its line."""
    path = pathlib.Path(path)
    seen = set() if _seen is None else _seen
    if path in seen:
        return
    seen.add(path)
    if path.suffix != ".py":
        raise RefusedFile(f"{path.name} is not a .py file: save your solutions as a Python file")
    if not path.is_file():
        raise RefusedFile(f"no such file: {path}")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as error:
        raise RefusedFile(f"{path.name} line {getattr(error, 'lineno', '?')}: "
                          f"not valid Python: {error.msg if hasattr(error, 'msg') else error}") from None
    for node in ast.walk(tree):
        where = f"{path.name} line {getattr(node, 'lineno', '?')}"
        for module in _imported_modules(node):
            own = path.with_name(module.split(".")[0] + ".py")
            if module in ALLOWED_IMPORTS:
                continue
            if own.is_file() and module.split(".")[0] != "minirect":
                static_check(own, seen)
                continue
            raise RefusedFile(f"{where}: imports {module}: answers must be your own code "
                              "(allowed imports: numpy, math and your own modules)")
        if isinstance(node, ast.Name) and node.id in REFUSED_NAMES:
            raise RefusedFile(f"{where}: uses {node.id}(), which the grader does not allow")
        if isinstance(node, ast.Attribute) and node.attr in REFUSED_ATTRIBUTES:
            raise RefusedFile(f"{where}: uses .{node.attr}, which the grader does not allow")


def _imported_modules(node) -> list:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:                                   # from . import x: a package, not a file
            return ["." * node.level + (node.module or "")]
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                if f"{node.module}.{a.name}" in ALLOWED_IMPORTS]
    return []


# ----------------------------------------------------------------------------
# Rule 2: run each exercise in a child process
# ----------------------------------------------------------------------------

def _encode(value, arrays: dict, key: str):
    """A case argument as JSON, its arrays into ``arrays`` (no pickle in either direction)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arrays[key] = np.asarray(value)
        return {"array": key}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays, f"{key}_{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{key}_{i}") for i, v in enumerate(value)]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _limit_memory(megabytes: int):
    def apply():                                         # runs in the child before it starts
        import resource
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply if megabytes and sys.platform.startswith("linux") else None


def run_in_child(exercise: Exercise, student, cases: list, timeout: float, memory_mb: int):
    """Run the student's answer on ``cases`` in a child process: (results, outputs) or an error text."""
    with tempfile.TemporaryDirectory(prefix="minirect-grade-") as folder:
        job_dir = pathlib.Path(folder)
        arrays = {}
        job = {"student": str(pathlib.Path(student).resolve()), "exercise": exercise.name,
               "outputs": len(exercise.outputs),
               "driver": ({"file": str(DRIVERS), "name": exercise.driver.__name__}
                          if exercise.driver is not None else None),
               "cases": [{"order": exercise.parameters,
                          "args": {n: _encode(v, arrays, f"c{k}_{n}") for n, v in case.args.items()}}
                         for k, case in enumerate(cases)]}
        np.savez(job_dir / "args.npz", **arrays)
        (job_dir / "job.json").write_text(json.dumps(job))
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        try:
            done = subprocess.run([sys.executable, "-I", str(CHILD), str(job_dir)], env=env,
                                  cwd=job_dir, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=_limit_memory(memory_mb))
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:g} s (an endless loop, or far too slow?)"
        try:
            results = json.loads((job_dir / "results.json").read_text())
            with np.load(job_dir / "outputs.npz", allow_pickle=False) as stored:
                outputs = dict(stored)
        except (OSError, ValueError):
            return _child_died(done)
        return results, outputs


def _child_died(done) -> str:
    if done.returncode < 0:
        return f"the grading process was killed by signal {-done.returncode} (out of memory?)"
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    return f"the grading process ended without results (exit status {done.returncode}: {last})"


def grade_in_child(exercise: Exercise, student, seed: int = 0, timeout: float = 20.0,
                   memory_mb: int = 2048) -> Verdict:
    """The verdict on ``student``'s answer to ``exercise``, its code run in a child process."""
    cases = cases_for(exercise, seed)
    ran = run_in_child(exercise, student, cases, timeout, memory_mb)
    if isinstance(ran, str):
        return Verdict(exercise.name, [CaseResult("all cases", False, ran)], len(cases))
    results, outputs = ran
    if len(results) == 1 and "error" in results[0] and results[0]["error"].startswith("loading"):
        return Verdict(exercise.name, [CaseResult("loading the file", False, results[0]["error"])],
                       len(cases))
    verdicts = []
    for k, (case, result) in enumerate(zip(cases, results)):
        verdicts.append(_judge_result(exercise, case, result, outputs, k))
        if not verdicts[-1].passed:
            break
    if len(results) < len(cases) and all(v.passed for v in verdicts):
        verdicts.append(CaseResult(cases[len(results)].label, False, "no result came back"))
    return Verdict(exercise.name, verdicts, len(cases))


def _judge_result(exercise, case, result, outputs, k) -> CaseResult:
    signature = f"the signature is {exercise.signature}"
    if "error" in result:
        stub = result["error"].startswith("not answered yet")
        return CaseResult(case.label, False, result["error"], "" if stub else signature)
    if "modified" in result:
        return CaseResult(case.label, False, f"the argument {result['modified']} was modified in place",
                          "return new arrays (w - v, not w -= v): exercises are pure functions")
    if "problem" in result:
        return CaseResult(case.label, False, result["problem"], signature)
    got = tuple(outputs[f"case{k}_out{j}"] for j in range(result["ok"]))
    return judge(exercise, case, got if len(got) > 1 else got[0])
