"""The grading child: runs a student's functions on the grader's cases, in its own process.

``minirect exercises check`` starts this file once per exercise as a script
(``python -I sandbox_child.py JOB_DIR``), with a time and a memory limit. It
imports only NumPy and the standard library, and before it loads the
student's file it makes ``import minirect`` fail: the student's code cannot
call minirect's solutions or its autograd, and it never sees the expected
values, which stay in the grading process. What comes back is data only
(``results.json`` and ``outputs.npz``, read without pickle).

JOB_DIR/job.json says what to run:
    {"student": "/path/student.py", "exercise": "relu_backward", "outputs": 1,
     "driver": null | {"file": "/path/drivers.py", "name": "build_tensor"},
     "cases": [{"args": {...}}, ...]}
and JOB_DIR/args.npz holds the case arrays (``{"array": key}`` in the args).
"""

import importlib.abc
import importlib.util
import json
import pathlib
import sys
import traceback

import numpy as np


class _RefuseMinirect(importlib.abc.MetaPathFinder):
    """Makes ``import minirect`` fail inside the grading child (answers must be the student's own)."""

    def find_spec(self, name, path=None, target=None):
        if name == "minirect" or name.startswith("minirect."):
            raise ImportError("minirect cannot be imported while grading: write the answer yourself")
        return None


def _decode(value, arrays):
    """A case argument from its JSON form (arrays by key, tuples tagged)."""
    if isinstance(value, dict) and "array" in value:
        return arrays[value["array"]].copy()
    if isinstance(value, dict) and "tuple" in value:
        return tuple(_decode(v, arrays) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def _load(path: pathlib.Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _student_line(error: BaseException, student: str) -> str:
    """Where in the student's files the error happened (the last frame there)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if pathlib.Path(f.filename).parent == pathlib.Path(student).parent]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno} of {pathlib.Path(f.filename).name}: {(f.line or '').strip()})"


def _describe_error(error: BaseException, student: str) -> str:
    if isinstance(error, SystemExit):
        return f"called exit() / raised SystemExit({error.code!r}){_student_line(error, student)}"
    if isinstance(error, KeyboardInterrupt):
        return f"raised KeyboardInterrupt{_student_line(error, student)}"
    if isinstance(error, NotImplementedError):
        return "not answered yet (the stub raises NotImplementedError)"
    if isinstance(error, MemoryError):
        return "ran out of memory (the grader's memory limit)"
    return f"raised {type(error).__name__}: {error}{_student_line(error, student)}"


def _as_arrays(raw, n: int):
    """The student's return value as n arrays, or a problem text (the grader checks values)."""
    values = raw if isinstance(raw, (tuple, list)) and n > 1 else (raw,)
    if n == 1 and isinstance(raw, tuple) and len(raw) == 1:
        values = raw
    if len(values) != n:
        return None, f"returned {len(values)} value(s), expected {n}"
    arrays = []
    for v in values:
        if v is None:
            return None, "returned None (a missing return statement?)"
        try:
            a = np.asarray(v)
        except Exception:
            return None, f"returned {type(v).__name__}, expected an array or a number"
        if a.dtype.kind not in "biufc":
            return None, f"returned {type(v).__name__} of dtype {a.dtype}, expected numbers"
        arrays.append(a)
    return arrays, ""


def _modified(before: dict, after: dict):
    for key, value in before.items():
        if isinstance(value, np.ndarray) and not np.array_equal(value, after[key], equal_nan=True):
            return key
    return None


def run(job_dir: pathlib.Path) -> None:
    job = json.loads((job_dir / "job.json").read_text())
    with np.load(job_dir / "args.npz", allow_pickle=False) as stored:
        arrays = dict(stored)
    student = job["student"]
    sys.meta_path.insert(0, _RefuseMinirect())
    sys.path = [p for p in sys.path if not pathlib.Path(p, "minirect").is_dir()]
    sys.path.insert(0, str(pathlib.Path(student).parent))     # the student's own modules
    driver = None
    if job["driver"]:
        driver = getattr(_load(pathlib.Path(job["driver"]["file"]), "_grading_drivers"),
                         job["driver"]["name"])
    results, outputs = [], {}
    try:
        module = _load(pathlib.Path(student), "student")
    except BaseException as error:                       # noqa: B036 - exit() in a student file too
        results.append({"error": "loading the file " + _describe_error(error, student)})
        _write(job_dir, results, outputs)
        return
    answer = module if driver else getattr(module, job["exercise"], None)
    for k, case in enumerate(job["cases"]):
        args = {name: _decode(v, arrays) for name, v in case["args"].items()}
        kept = {name: (v.copy() if isinstance(v, np.ndarray) else v) for name, v in args.items()}
        try:
            values = [args[p] for p in case["order"]]
            raw = driver(answer, *values) if driver else answer(*values)
        except BaseException as error:                   # noqa: B036 - exit() must not end grading
            results.append({"error": _describe_error(error, student)})
            continue
        changed = _modified(kept, args)
        got, problem = _as_arrays(raw, job["outputs"])
        if changed:
            results.append({"modified": changed})
        elif problem:
            results.append({"problem": problem})
        else:
            for j, a in enumerate(got):
                outputs[f"case{k}_out{j}"] = a
            results.append({"ok": len(got)})
    _write(job_dir, results, outputs)


def _write(job_dir, results, outputs):
    np.savez(job_dir / "outputs.npz", **outputs)
    (job_dir / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    run(pathlib.Path(sys.argv[1]))
