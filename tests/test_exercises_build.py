"""The build-it-yourself track: a student's own engine, checked against minirect's autograd.

Every task passes on the reference engine (``build_reference``) and on a second,
independent engine written here (another topological order: Kahn's algorithm;
arrays saved in forward; parents as a list), under the practice seed and a
grading seed. The same engine with one bug switched on fails the tasks that
bug concerns. The drivers and the reference import only NumPy and the standard
library, and run where minirect cannot be imported. The template is graded
stub by stub. The worksheet notebook executes as shipped (every check "not
done yet") and, with ``SHOW_SOLUTIONS = True``, green end to end.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from minirect import exercises
from minirect.exercises import build, build_reference, drivers
from minirect.exercises._checker import cases_for, grade

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_build_your_engine.ipynb"
TASKS = {e.name: e for e in build.EXERCISES}


# ----------------------------------------------------------------------------
# A second engine, written independently of build_reference; each keyword is a bug
# ----------------------------------------------------------------------------

def make_engine(**bugs):
    """A whole engine as a namespace. ``make_engine()`` is correct; ``make_engine(overwrite=True)``
    replaces gradients instead of adding them, and so on for each name in ``bug(...)`` below."""
    unknown = set(bugs) - set(BUGS)
    assert not unknown, unknown

    def bug(name):
        return bugs.get(name, False)

    def sum_to(g, shape):
        g = np.asarray(g)
        if not bug("sum_to_no_leading"):
            while g.ndim > len(shape):
                g = g.sum(axis=0)
        for axis, n in enumerate(shape):
            if n == 1 and g.shape[axis] != 1:
                g = g.sum(axis=axis, keepdims=not bug("sum_to_no_keepdims"))
        return g

    class Tensor:
        def __init__(self, data):
            self.data = np.array(data) if bug("keep_dtype") else np.array(data, dtype=float)
            self.grad = np.zeros_like(self.data) if bug("grad_zeros") else None
            self.creator = None

        shape = property(lambda self: self.data.shape)
        parents = property(lambda self: list(self.creator.inputs) if self.creator else [])

        def backward(self):
            self.grad = np.ones(self.data.shape)
            order = topological_order(self)
            for t in (order if bug("forward_order") else order[::-1]):
                if t.creator is not None:
                    for x, g in zip(t.creator.inputs, t.creator.backward(t.grad)):
                        if x.grad is not None and bug("in_place"):
                            x.grad += g
                        else:
                            x.grad = g if x.grad is None or bug("overwrite") else x.grad + g

    def topological_order(tensor):
        if bug("no_visited") or bug("pre_order"):       # depth first, without a visited set / pre-order
            order, seen = [], set()

            def visit(t):
                if bug("no_visited") or id(t) not in seen:
                    seen.add(id(t))
                    if bug("pre_order"):
                        order.append(t)
                    for p in t.parents:
                        visit(p)
                    if not bug("pre_order"):
                        order.append(t)
            visit(tensor)
            return order
        if bug("bfs"):                                   # by distance from the output, reversed
            order, queue, seen = [], [tensor], {id(tensor)}
            while queue:
                t = queue.pop(0)
                order.append(t)
                for p in t.parents:
                    if id(p) not in seen:
                        seen.add(id(p))
                        queue.append(p)
            return order[::-1]
        nodes, stack = {}, [tensor]                      # Kahn's algorithm from the output
        while stack:
            t = stack.pop()
            if id(t) not in nodes:
                nodes[id(t)] = t
                stack.extend(t.parents)
        uses = dict.fromkeys(nodes, 0)
        for t in nodes.values():
            for p in t.parents:
                uses[id(p)] += 1
        order, ready = [], [tensor]
        while ready:
            t = ready.pop()
            order.append(t)
            for p in t.parents:
                uses[id(p)] -= 1
                if uses[id(p)] == 0:
                    ready.append(p)
        return order[::-1]

    class Function:
        shared = {}

        @classmethod
        def apply(cls, *inputs):
            fn = Function.shared.setdefault(cls, cls()) if bug("shared_instance") else cls()
            fn.inputs = tuple(x.data for x in inputs) if bug("inputs_as_arrays") else inputs
            out = Tensor(fn.forward(*[x.data for x in inputs]))
            if not bug("no_creator"):
                out.creator = fn
            return out

        def forward(self, *arrays):
            raise NotImplementedError

        def backward(self, gy):
            raise NotImplementedError

    class Add(Function):
        def forward(self, a, b):
            self.shapes = a.shape, b.shape
            return a + b

        def backward(self, gy):
            if bug("no_sum_to"):
                return gy, gy
            return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])

    class Mul(Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, gy):
            ga, gb = (gy * self.a, gy * self.b) if bug("mul_swapped") else (gy * self.b, gy * self.a)
            return sum_to(ga, self.a.shape), sum_to(gb, self.b.shape)

    class MatMul(Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a @ b

        def backward(self, gy):
            return gy @ (self.b if bug("matmul_no_transpose") else self.b.T), self.a.T @ gy

    class Sum(Function):
        def forward(self, x):
            self.x_shape = x.shape
            return x.sum()

        def backward(self, gy):
            return (gy if bug("sum_grad_scalar") else gy * np.ones(self.x_shape)),

    class ReLU(Function):
        def forward(self, x):
            self.positive = x > 0
            return np.where(self.positive, x, 0.0)

        def backward(self, gy):
            return (gy if bug("relu_no_mask") else gy * self.positive),

    return types.SimpleNamespace(Tensor=Tensor, Function=Function, topological_order=topological_order,
                                 sum_to=sum_to, Add=Add, Mul=Mul, MatMul=MatMul, Sum=Sum, ReLU=ReLU)


# For each task, the bugs it must catch (each a usual mistake).
WRONG = {
    "engine_tensor": ["keep_dtype", "grad_zeros"],
    "engine_apply": ["no_creator", "inputs_as_arrays", "shared_instance"],
    "engine_topo_order": ["no_visited", "pre_order", "bfs"],
    "engine_backward": ["overwrite", "no_visited", "forward_order", "bfs", "in_place"],
    "engine_sum_to": ["sum_to_no_leading", "sum_to_no_keepdims"],
    "engine_add_mul": ["no_sum_to", "mul_swapped", "sum_to_no_leading"],
    "engine_matmul_sum": ["matmul_no_transpose", "sum_grad_scalar"],
    "engine_mlp": ["relu_no_mask", "overwrite", "no_sum_to", "sum_to_no_leading"],
}
BUGS = sorted({b for bugs in WRONG.values() for b in bugs})


def test_the_track_has_six_to_eight_tasks_in_its_two_units():
    assert 6 <= len(build.EXERCISES) <= 8 and set(WRONG) == set(TASKS)
    assert {e.unit for e in build.EXERCISES} == {"autograd", "broadcasting"}
    assert [e.name for e in build.EXERCISES] == [n for n in exercises.names() if n in TASKS]
    for e in build.EXERCISES:
        assert e.driver is not None and e.driver.__module__ == drivers.__name__
        assert e.solution is build_reference and e.kind == "code" and 1 <= e.stars <= 3
        assert e.defines and e.requires and 2 <= len(e.hints) <= 3 and len(e.mistakes) >= 2
        assert all(hasattr(build_reference, n) for n in e.requires)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", list(TASKS))
def test_reference_engine_passes(name, seed):
    verdict = grade(TASKS[name], build_reference, seed=seed)
    assert verdict, str(verdict)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", list(TASKS))
def test_an_independent_engine_passes(name, seed):
    # another valid topological order, parents as a list, arrays kept by forward: all accepted
    verdict = grade(TASKS[name], make_engine(), seed=seed)
    assert verdict, str(verdict)


def test_a_notebook_namespace_passes():
    namespace = types.SimpleNamespace(**vars(build_reference))
    assert exercises.check("engine_mlp", namespace, quiet=True)


def test_the_grading_seed_changes_the_cases():
    for e in build.EXERCISES:
        practice, graded = cases_for(e, 0), cases_for(e, 7)
        assert [c.label for c in practice] == [c.label for c in graded]
        arrays = [(a, b) for p, g in zip(practice, graded) for a, b in zip(p.args.values(), g.args.values())
                  if isinstance(a, np.ndarray) and a.size > 1]
        assert arrays and any(not np.array_equal(a, b) for a, b in arrays), e.name


@pytest.mark.parametrize("name, bug", [(n, b) for n in WRONG for b in WRONG[n]])
def test_a_wrong_engine_fails(name, bug):
    verdict = grade(TASKS[name], make_engine(**{bug: True}))
    assert not verdict
    assert verdict.line().startswith(f"FAIL {name}: case ")


@pytest.mark.parametrize("name, bug, words", [
    ("engine_tensor", "keep_dtype", "float64"),
    ("engine_apply", "no_creator", "creator is fn"),
    ("engine_topo_order", "no_visited", "listed twice"),
    ("engine_topo_order", "bfs", "after all the tensors"),
    ("engine_topo_order", "pre_order", "after all the tensors"),
    ("engine_backward", "overwrite", "overwritten"),
    ("engine_backward", "no_visited", "counted twice"),
    ("engine_backward", "in_place", "changed in place"),
    ("engine_sum_to", "sum_to_no_leading", "leading axes"),
    ("engine_add_mul", "no_sum_to", "sum the broadcast copies"),
    ("engine_add_mul", "mul_swapped", "swapped"),
    ("engine_matmul_sum", "matmul_no_transpose", "transposed"),
    ("engine_matmul_sum", "sum_grad_scalar", "x's shape"),
    ("engine_mlp", "relu_no_mask", "ReLU"),
    ("engine_mlp", "overwrite", "d is used twice"),
    ("engine_mlp", "no_sum_to", "summed over the batch"),
])
def test_the_usual_mistakes_get_their_hints(name, bug, words):
    verdict = grade(TASKS[name], make_engine(**{bug: True}))
    assert not verdict and words in verdict.failure.hint, str(verdict)


@pytest.mark.parametrize("name", list(TASKS))
def test_every_known_mistake_fails_with_its_hint(name):
    exercise = TASKS[name]
    for mistake in exercise.mistakes:
        variant = getattr(mistake.fn, "variant", None)    # the reference with one edit
        engine = build._variant(variant) if variant else types.SimpleNamespace(sum_to=mistake.fn)
        verdict = grade(exercise, engine)
        assert not verdict and verdict.failure.hint == mistake.hint, str(verdict)


def test_the_graph_cases_include_a_diamond_a_skip_edge_and_an_unused_node():
    labels = " | ".join(c.label for c in cases_for(build.TOPO_ORDER))
    for words in ("x*x + x", "diamond", "skip edge", "does not use", "random graph"):
        assert words in labels


def test_describe_shows_what_to_define_and_hints_not_the_code():
    for name in TASKS:
        text = exercises.describe(name)
        assert "Define: " in text and "Hint 1:" in text and "unit: " in text
        for line in ("np.full(x.shape, gy)", "gy @ b.data.T", "x.grad + g", "visited.add"):
            assert line not in text


# ----------------------------------------------------------------------------
# The sandbox: drivers and the reference import only NumPy and the standard library
# ----------------------------------------------------------------------------

def _imports(path):
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("module", [drivers, build_reference], ids=["drivers", "build_reference"])
def test_numpy_and_the_standard_library_only(module):
    imports = _imports(module.__file__)
    assert imports
    for name, level in imports:
        top = name.split(".")[0]
        assert level == 0, f"{module.__name__}: a relative import of {name!r}"
        assert top == "numpy" or top in sys.stdlib_module_names, f"{module.__name__} imports {name}"


def test_the_template_imports_numpy_only_and_defines_every_name():
    assert _imports(build.TEMPLATE) == [("numpy", 0)]
    defined = exercises.defined_names(build.TEMPLATE)
    for e in build.EXERCISES:
        assert set(e.requires) <= defined, e.name


_CHILD = r"""
import importlib.abc, importlib.util, json, sys
import numpy as np

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "minirect":
            raise ImportError("no minirect here")

sys.meta_path.insert(0, Refuse())

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

job = json.loads(sys.stdin.read())
drivers = load(job["drivers"], "drivers_by_path")
engine = load(job["engine"], "engine_by_path")
results = []
for name, args in job["calls"]:
    args = {k: (tuple(tuple(e) for e in v) if k == "graph" else tuple(v) if k == "shape"
                else np.asarray(v) if isinstance(v, list) and k != "data" else v)
            for k, v in args.items()}
    results.append([np.asarray(o, dtype=float).tolist() for o in getattr(drivers, name)(engine, **args)])
print(json.dumps(results))
"""


def test_drivers_and_reference_run_where_minirect_cannot_be_imported():
    calls, expected = [], []
    for e in build.EXERCISES:
        case = cases_for(e)[1]
        args = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in case.args.items()}
        calls.append((e.driver.__name__, args))
        expected.append(e.expected(**case.args))
    job = {"drivers": drivers.__file__, "engine": build_reference.__file__, "calls": calls}
    proc = subprocess.run([sys.executable, "-I", "-c", _CHILD], input=json.dumps(job), cwd="/",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for got, want, e in zip(json.loads(proc.stdout), expected, build.EXERCISES):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w, dtype=float), rtol=1e-9, atol=1e-12,
                                       err_msg=e.name)


def test_the_template_is_graded_stub_by_stub(tmp_path, capsys):
    student = tmp_path / "engine.py"
    student.write_text(build.TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    assert exercises.main(["check", str(student), "--only", "engine_tensor", "engine_sum_to"]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines()
             if line.startswith(("FAIL ", "TODO "))}
    assert set(lines) == {"engine_tensor", "engine_sum_to"} and "MISSING" not in out
    assert all("NotImplementedError" in line for line in lines.values()), out


def test_the_reference_as_a_student_file_passes_in_the_sandbox(tmp_path, capsys):
    student = tmp_path / "engine.py"
    student.write_text(pathlib.Path(build_reference.__file__).read_text(encoding="utf-8"), encoding="utf-8")
    assert exercises.main(["check", str(student), "--only", *TASKS, "--seed", "7"]) == 0
    assert f"{len(TASKS)} of {len(TASKS)} exercises passed" in capsys.readouterr().out


# ----------------------------------------------------------------------------
# The worksheet notebook
# ----------------------------------------------------------------------------

nbformat = pytest.importorskip("nbformat")


def _notebook():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def _text(nb) -> str:
    """Every stored output as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + json.dumps(output.get("data", {})))
    return "".join(parts)


def test_the_notebook_ships_without_solutions():
    nb = _notebook()
    params = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in params.metadata.get("tags", []) and "SHOW_SOLUTIONS = False" in params.source
    source = "".join(c.source for c in nb.cells)
    for name in TASKS:
        assert f'exercises.describe("{name}")' in source and f'check("{name}")' in source
    stored = _text(nb)
    assert "not done yet" in stored and "PASS" not in stored
    for leak in ("/work/", "/home/", "/tmp/", "site-packages", "np.full(x.shape, gy)", "x.grad + g"):
        assert leak not in stored, leak
    assert "raise NotImplementedError" in source and "getsource" not in source


def _reference_body_lines():
    """The reference engine's code lines, less its signatures, docstrings and comments."""
    lines = set()
    for line in pathlib.Path(build_reference.__file__).read_text(encoding="utf-8").splitlines():
        code = line.split("#")[0].strip()
        if len(code) >= 10 and not code.startswith(('"', "def ", "class ", "@", "import ",
                                                     "raise NotImplementedError")):
            lines.add(code)
    return lines - {"fn = cls()"}          # the task itself says that apply makes fn = cls()


@pytest.mark.parametrize("path", [NOTEBOOK, NOTEBOOK.with_suffix(".py"), build.TEMPLATE],
                         ids=["ipynb", "py", "template"])
def test_student_material_carries_no_line_of_the_reference(path):
    lines = _reference_body_lines()
    assert len(lines) > 30
    text = path.read_text(encoding="utf-8")
    assert not [line for line in lines if line in text]


def _execute(nb, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    env = {"MINIRECT_NOTEBOOK_FAST": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return _text(nb)


def test_the_notebook_runs_as_shipped(tmp_path):
    out = _execute(_notebook(), tmp_path)
    assert out.count("not done yet") == len(TASKS) and "PASS" not in out
    assert "finish the tasks above first" in out


def test_the_notebook_runs_green_with_the_solutions(tmp_path):
    nb = _notebook()
    params = next(c for c in nb.cells if c.cell_type == "code")
    params.source = params.source.replace("SHOW_SOLUTIONS = False", "SHOW_SOLUTIONS = True")
    out = _execute(nb, tmp_path)
    for name in TASKS:
        assert f"PASS {name}" in out
    assert "FAIL" not in out and "not done yet" not in out and "your engine trained" in out
