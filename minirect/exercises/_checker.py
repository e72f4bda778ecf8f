"""The grading machinery behind ``minirect.exercises.check``.

An ``Exercise`` bundles a task text, a reference solution written in plain
NumPy, a source of expected values (minirect's own engine: its autograd
backward, ``minirect.functional``, ``minirect.init``, ``minirect.optim``),
seeded test cases, and a list of typical mistakes. ``grade`` runs a
student's function on every case and compares each output element by
element; on a mismatch it names the output, the element, the expected and
the actual value, and tries to recognise the mistake (one of the exercise's
known wrong answers, a flipped sign, a constant factor, a transpose).

Where an exercise computes a gradient, one extra case compares the student's
answer with central differences of the forward pass in float64

    dE/dx[j] ≈ (s(x + eps·e_j) − s(x − eps·e_j)) / (2 eps),   s(x) = Σ f(x) · gy

so a student sees that the formula is a derivative, not just that it
matches the engine.
"""

from __future__ import annotations

import inspect
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .. import backend
from ..autograd import Tensor

np = backend.module_for("cpu")          # NumPy: exercises run on the host


@dataclass
class Mistake:
    """A typical wrong answer: ``fn`` computes it, ``hint`` says what went wrong."""
    hint: str
    fn: Callable


@dataclass
class Case:
    """One set of arguments; ``expected`` is filled in by the grader."""
    label: str
    args: dict
    gradcheck: bool = False       # expected values from finite differences, not the engine


@dataclass
class Exercise:
    name: str
    title: str
    task: str                     # what to compute, in words
    math: str                     # the derivation's key lines
    solution: Callable            # the reference (plain NumPy), shown to teachers
    outputs: tuple                # names of the returned values, in order
    cases: Callable               # () -> list[Case]
    expected: Callable            # (**args) -> tuple of arrays, from minirect's engine
    mistakes: list = field(default_factory=list)
    forward: Callable | None = None   # (**args) -> array: the forward pass, for gradchecks
    wrt: tuple = ()               # for each output, the argument it differentiates (gradcheck)
    shape_hint: str = ""          # said when an output has the wrong shape
    hints: tuple = ()             # what describe() shows: steps towards the answer, not the answer
    stars: int = 1                # difficulty: 1 (apply), 2 (derive), 3 (derive and predict)
    unit: str = ""                # the course unit (docs/course.md) the exercise ends
    kind: str = "code"            # "code" (a function to write) or "derive" (a number to predict)
    # For build-it-yourself tasks the student writes classes, not one function: the
    # driver (a plain function in drivers.py, which imports only NumPy so it can run in
    # the grading sandbox) takes the student's namespace and the case's arguments and
    # returns the outputs to compare. None: call the student's function ``name``.
    driver: Callable | None = None

    defines: str = ""             # driver tasks: what the student's file must define
    requires: tuple = ()          # driver tasks: the top-level names the file must define

    @property
    def parameters(self) -> list:
        if self.driver is not None:                 # driver(namespace, *case arguments)
            return list(inspect.signature(self.driver).parameters)[1:]
        return list(inspect.signature(self.solution).parameters)

    @property
    def signature(self) -> str:
        if self.driver is not None:
            return self.defines
        return f"{self.name}{inspect.signature(self.solution)} -> ({', '.join(self.outputs)})"

    def call(self, answer, args: dict):
        """Run the student's ``answer`` (a function, or for driver tasks a namespace) on ``args``."""
        values = [args[p] for p in self.parameters]
        return self.driver(answer, *values) if self.driver is not None else answer(*values)


# ----------------------------------------------------------------------------
# Engine helpers used by the exercises' ``expected``
# ----------------------------------------------------------------------------

def engine_grads(op, inputs, gy, differentiate):
    """Gradients by minirect's autograd: run ``op`` on tensors, backward with ``gy``.

    ``inputs`` are arrays (or other arguments passed through), ``differentiate``
    the positions whose gradients are returned, in that order.
    """
    tensors = [Tensor(np.array(x, copy=True), requires_grad=i in differentiate)
               if hasattr(x, "shape") else x for i, x in enumerate(inputs)]
    out = op(*tensors)
    out.backward(None if gy is None else np.array(gy, copy=True))
    return tuple(backend.to_numpy(tensors[i].grad) for i in differentiate)


def numeric_vjp(forward, args: dict, name: str, eps: float = 1e-6):
    """Central differences of s = Σ forward(args) · gy with respect to ``args[name]``.

    Without a ``gy`` argument, ``forward`` must return the scalar s itself.
    """
    args = {k: (v.astype("float64") if _is_float_array(v) else v) for k, v in args.items()}
    x = args[name].copy()
    gy = args.get("gy")

    def s(value):
        out = np.asarray(forward(**{**args, name: value}), dtype="float64")
        return float(out.sum() if gy is None else (out * gy).sum())

    grad = np.zeros_like(x)
    for j in range(x.size):
        step = np.zeros_like(x)
        step.reshape(-1)[j] = eps
        grad.reshape(-1)[j] = (s(x + step) - s(x - step)) / (2 * eps)
    return grad


_CASE_SEED = [0]        # set by ``grade(..., seed=)``; 0 is the seed students practise on


def case_rng(k: int):
    """The random generator of case ``k`` under the grading seed.

    A teacher who grades with ``--seed S`` (S ≠ 0) uses cases the student never saw;
    the case shapes, labels and hand-made cases stay the same.
    """
    seed = _CASE_SEED[0]
    return np.random.default_rng(k if seed == 0 else [seed, k])


def _is_float_array(v) -> bool:
    return hasattr(v, "dtype") and np.dtype(v.dtype).kind == "f"


# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------

@dataclass
class CaseResult:
    label: str
    passed: bool
    message: str = ""             # which output, which element, expected vs got
    hint: str = ""


@dataclass
class Verdict:
    """The result of ``check``: truthy only when every case passed."""
    name: str
    cases: list                   # the cases run, up to and including the first failure
    total: int = 0                # the cases the exercise has

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failure(self):
        return next((c for c in self.cases if not c.passed), None)

    def line(self) -> str:
        """The one-line verdict."""
        n = self.total or len(self.cases)
        if self.passed:
            return f"PASS {self.name}: all {n} cases passed"
        bad = self.failure
        if bad.message.startswith("not answered yet"):
            return f"TODO {self.name}: {bad.message}"
        index = self.cases.index(bad) + 1
        return f"FAIL {self.name}: case {index}/{n} ({bad.label}): {bad.message}"

    def __str__(self) -> str:
        bad = self.failure
        if bad is None or not bad.hint:
            return self.line()
        return f"{self.line()}\n     hint: {bad.hint}"

    __repr__ = __str__


# ----------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------

def cases_for(exercise: Exercise, seed: int = 0) -> list:
    """The exercise's cases under grading seed ``seed`` (0: the cases students practise on)."""
    previous, _CASE_SEED[0] = _CASE_SEED[0], int(seed)
    try:
        return exercise.cases()
    finally:
        _CASE_SEED[0] = previous


def grade(exercise: Exercise, fn: Callable, seed: int = 0) -> Verdict:
    """Run ``fn`` on every case of ``exercise``; stop at the first failing case."""
    results = []
    cases = cases_for(exercise, seed)
    for case in cases:
        result = _grade_case(exercise, fn, case)
        results.append(result)
        if not result.passed:
            break
    return Verdict(exercise.name, results, len(cases))


def _expected(exercise, case):
    if not case.gradcheck:
        return tuple(exercise.expected(**_copy(case.args)))
    return tuple(numeric_vjp(exercise.forward, case.args, name) for name in exercise.wrt)


def _grade_case(exercise, fn, case) -> CaseResult:
    args = _copy(case.args)
    try:
        raw = exercise.call(fn, args)
    except NotImplementedError:    # a worksheet's stub, not yet replaced
        return CaseResult(case.label, False, "not answered yet (the stub raises NotImplementedError)")
    except Exception as error:     # the student's code failed: show where
        where = traceback.extract_tb(error.__traceback__)[-1]
        shapes = any(word in str(error) for word in ("shape", "mismatch", "broadcast"))
        hint = (exercise.shape_hint or "check which operand needs a transpose") if shapes else ""
        return CaseResult(case.label, False, f"raised {type(error).__name__}: {error} "
                          f"(line {where.lineno}: {where.line})",
                          (hint + "; " if hint else "") + f"the signature is {exercise.signature}")
    for key, value in case.args.items():
        if hasattr(value, "shape") and not np.array_equal(args[key], value):
            return CaseResult(case.label, False, f"the argument {key} was modified in place",
                              "return new arrays (w - v, not w -= v): exercises are pure functions")
    return judge(exercise, case, raw)


def judge(exercise, case, raw) -> CaseResult:
    """Compare the student's return value ``raw`` on ``case`` with the expected values."""
    got, problem = _as_outputs(raw, len(exercise.outputs))
    if problem:
        return CaseResult(case.label, False, problem, f"return {exercise.signature.split('->')[-1].strip()}")
    expected = _expected(exercise, case)
    tol = _tolerance(case)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        message = _compare(exercise.outputs[k], g, np.asarray(e), tol)
        if message:
            return CaseResult(case.label, False, message, _diagnose(exercise, case, k, g, expected, tol))
    return CaseResult(case.label, True)


def _copy(args: dict) -> dict:
    return {k: (v.copy() if hasattr(v, "copy") else v) for k, v in args.items()}


def _as_outputs(raw, n: int):
    """The student's return value as a list of n float64 arrays, or a problem text."""
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
            a = np.asarray(backend.to_numpy(backend.unwrap(v)))
            if a.dtype.kind == "c":
                return None, "returned complex values, expected real numbers"
            a = a.astype("float64")
        except (TypeError, ValueError):
            return None, f"returned {type(v).__name__}, expected an array or a number"
        if not np.isfinite(a).all():
            return None, f"returned {int((~np.isfinite(a)).sum())} non-finite value(s) (nan or inf)"
        arrays.append(a)
    return arrays, ""


def _tolerance(case) -> tuple:
    """(rtol, atol): float32 cases allow float32 rounding; gradchecks allow difference error."""
    if case.gradcheck:
        return 1e-5, 1e-6
    dtypes = {np.dtype(v.dtype) for v in case.args.values() if _is_float_array(v)}
    return (1e-4, 1e-5) if np.dtype("float32") in dtypes else (1e-7, 1e-9)


def _close(got, expected, tol):
    rtol, atol = tol
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    return np.abs(got - expected) <= atol * scale + rtol * np.abs(expected)


def _compare(name, got, expected, tol) -> str:
    """'' when equal within tolerance; else a text naming the first wrong element."""
    if got.shape != expected.shape:
        return f"output {name} has shape {got.shape}, expected {expected.shape}"
    ok = _close(got, expected, tol)
    if ok.all():
        return ""
    first = tuple(int(i) for i in np.argwhere(~ok)[0])
    where = f"{name}[{', '.join(map(str, first))}]" if first else name
    wrong = int((~ok).sum())
    return (f"{where}: expected {expected[first]:.6g}, got {got[first]:.6g} "
            f"({wrong} of {ok.size} elements wrong)")


def _diagnose(exercise, case, k, got, expected, tol) -> str:
    """A hint for output k: a known mistake, else a generic pattern, else the math."""
    want = np.asarray(expected[k], dtype="float64")
    for mistake in exercise.mistakes:
        try:
            wrong, _ = _as_outputs(mistake.fn(**_copy(case.args)), len(exercise.outputs))
        except Exception:          # a mistake that does not apply to this case's shapes
            continue
        if wrong is None or wrong[k].shape != got.shape:
            continue
        differs = wrong[k].shape != want.shape or not _close(wrong[k], want, tol).all()
        if differs and _close(got, wrong[k], tol).all():
            return mistake.hint
    if got.ndim == 2 and got.T.shape == want.shape and _close(got.T, want, tol).all():
        return "the result is transposed (a weight or an operand used without its transpose?)"
    if got.shape != want.shape:
        return exercise.shape_hint or "check which axes you summed over"
    if _close(got, -want, tol).all():
        return "the sign is flipped"
    ratio = _constant_ratio(got, want)
    if ratio is not None:
        return f"every element is off by the same factor {ratio:.4g}: a constant is missing or extra"
    return f"compare with the math: describe({exercise.name!r})"


def _constant_ratio(got, want):
    nonzero = np.abs(want) > 1e-12
    if not nonzero.any() or (np.abs(got[~nonzero]) > 1e-9).any():
        return None
    ratios = got[nonzero] / want[nonzero]
    r = float(ratios.reshape(-1)[0])
    return r if abs(r - 1) > 1e-3 and np.allclose(ratios, r, rtol=1e-4) else None
