"""Autograd core: every basic op passes gradcheck, keeps float32, and errors are clear."""

import ast
import pathlib

import numpy as np
import pytest

import minirect as mr
import minirect.functional as F

RNG = np.random.default_rng(1)


def t64(xp, shape, low=-1.0, high=1.0):
    return mr.tensor(xp.asarray(RNG.uniform(low, high, shape)), requires_grad=True)


# op name -> (function, input shapes, input range)
UNARY = {
    "neg": (lambda a: -a, (3, 4), (-1, 1)),
    "exp": (F.exp, (3, 4), (-1, 1)),
    "log": (F.log, (3, 4), (0.5, 2)),
    "sqrt": (F.sqrt, (3, 4), (0.5, 2)),
    "tanh": (F.tanh, (3, 4), (-2, 2)),
    "sigmoid": (F.sigmoid, (3, 4), (-3, 3)),
    "pow_scalar": (lambda a: a ** 3, (3, 4), (-1, 1)),
    "rpow": (lambda a: 2.0 ** a, (3, 4), (-1, 1)),
    "sum_all": (lambda a: a.sum(), (3, 4), (-1, 1)),
    "sum_axis": (lambda a: a.sum(axis=1), (3, 4, 2), (-1, 1)),
    "sum_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True), (3, 4, 2), (-1, 1)),
    "mean": (lambda a: a.mean(axis=0), (3, 4), (-1, 1)),
    "mean_all": (lambda a: a.mean(), (3, 4), (-1, 1)),
    "max": (lambda a: a.max(axis=1), (3, 5), (-1, 1)),
    "max_keepdims": (lambda a: a.max(axis=(0, 1), keepdims=True), (3, 5, 2), (-1, 1)),
    "reshape": (lambda a: a.reshape(2, 6), (3, 4), (-1, 1)),
    "transpose": (lambda a: a.transpose(2, 0, 1), (2, 3, 4), (-1, 1)),
    "T": (lambda a: a.T, (2, 3), (-1, 1)),
    "broadcast_to": (lambda a: F.broadcast_to(a, (2, 3, 4)), (3, 1), (-1, 1)),
    "sum_to": (lambda a: F.sum_to(a, (3, 1)), (2, 3, 4), (-1, 1)),
    "getitem_slice": (lambda a: a[1:, ::2], (3, 4), (-1, 1)),
    "getitem_int_array": (lambda a: a[mr.tensor([0, 2, 0, 0], device=a.device)], (3, 4), (-1, 1)),
    "getitem_pairs": (lambda a: a[mr.tensor([0, 1, 1], device=a.device),
                                  mr.tensor([2, 3, 3], device=a.device)], (3, 4), (-1, 1)),
}

BINARY = {
    "add": (lambda a, b: a + b, (3, 4), (4,)),
    "sub": (lambda a, b: a - b, (3, 1), (1, 4)),
    "mul": (lambda a, b: a * b, (2, 3, 4), (3, 1)),
    "div": (lambda a, b: a / b, (3, 4), (3, 4)),
    "pow": (lambda a, b: a ** b, (3, 4), (4,)),
    "matmul": (lambda a, b: a @ b, (3, 4), (4, 2)),
    "matmul_batched": (lambda a, b: a @ b, (2, 3, 4), (4, 5)),
    "matmul_vec": (lambda a, b: a @ b, (3, 4), (4,)),
    "matmul_vecvec": (lambda a, b: a @ b, (4,), (4,)),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=1), (3, 2), (3, 4)),
    "stack": (lambda a, b: F.stack([a, b], axis=1), (3, 4), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(xp, name):
    fn, shape, (lo, hi) = UNARY[name]
    assert mr.gradcheck(fn, t64(xp, shape, lo, hi))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(xp, name):
    fn, sa, sb = BINARY[name]
    lo = 0.5 if name in ("div", "pow") else -1.0
    a, b = t64(xp, sa, lo, 2.0), t64(xp, sb, lo, 2.0)
    assert mr.gradcheck(fn, a, b)


def test_repeated_indices_accumulate(xp):
    a = mr.tensor(xp.zeros(3, dtype=xp.float32), requires_grad=True)
    a[xp.asarray([0, 0, 2, 0])].sum().backward()
    assert mr.backend.to_numpy(a.grad).tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_keeps_float32(xp, name):
    fn, shape, (lo, hi) = UNARY[name]
    a = mr.tensor(xp.asarray(RNG.uniform(lo, hi, shape), dtype=xp.float32), requires_grad=True)
    y = fn(a)
    assert y.dtype == np.float32
    y.sum().backward()
    assert mr.backend.dtype(a.grad.dtype) == np.float32


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_keeps_float32(xp, name):
    fn, sa, sb = BINARY[name]
    a = mr.tensor(xp.asarray(RNG.uniform(0.5, 2, sa), dtype=xp.float32), requires_grad=True)
    b = mr.tensor(xp.asarray(RNG.uniform(0.5, 2, sb), dtype=xp.float32), requires_grad=True)
    y = fn(a, b)
    assert y.dtype == np.float32
    y.sum().backward()
    assert mr.backend.dtype(a.grad.dtype) == np.float32 and mr.backend.dtype(b.grad.dtype) == np.float32


@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5), np.array(2.5)])
def test_python_scalars_keep_dtype(xp, scalar):
    a = mr.tensor(xp.ones(3, dtype=xp.float32))
    for y in (a + scalar, scalar * a, a / scalar, scalar - a, a ** scalar, scalar / a):
        assert y.dtype == np.float32


def test_python_floats_default_to_float32():
    assert mr.tensor([1.0, 2.0]).dtype == np.float32
    assert mr.tensor([1, 2]).dtype.kind == "i"


def test_mixed_float_dtypes_raise(xp):
    a = mr.tensor(xp.ones(3, dtype=xp.float32))
    b = mr.tensor(xp.ones(3, dtype=xp.float64))
    with pytest.raises(TypeError, match="Mul: inputs mix float32 and float64"):
        a * b


def test_mixed_backends_raise_naming_op_and_types():
    cp = pytest.importorskip("cupy")
    if not mr.cuda_available():
        pytest.skip("no CUDA device")
    a = mr.tensor(np.ones(3, dtype=np.float32))
    b = mr.tensor(cp.ones(3, dtype=cp.float32))
    with pytest.raises(TypeError, match=r"Add: cannot mix a numpy.ndarray and a cupy"):
        a + b


def test_mixed_backend_message_without_gpu():
    """The lookup names both types; checked here with a fake CuPy-like array."""
    from minirect import backend

    class FakeCupyArray:
        pass
    FakeCupyArray.__module__ = "cupy._core.core"
    with pytest.raises(TypeError, match="MatMul: cannot mix a numpy.ndarray and a cupy"):
        backend.get_array_module(np.ones(2), FakeCupyArray(), op="MatMul")


def test_shape_errors_name_both_shapes(xp):
    a = mr.tensor(xp.ones((3, 4), dtype=xp.float32))
    b = mr.tensor(xp.ones((5, 2), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) and \(5, 2\)"):
        a @ b
    with pytest.raises(ValueError, match=r"Add: shapes \(3, 4\) and \(5, 2\) cannot be broadcast"):
        a + b


def test_backward_needs_scalar_or_grad(xp):
    a = mr.tensor(xp.ones((2, 2), dtype=xp.float32), requires_grad=True)
    y = a * 2
    with pytest.raises(RuntimeError, match="needs a scalar output"):
        y.backward()
    y.backward(xp.ones((2, 2), dtype=xp.float32))
    assert mr.backend.to_numpy(a.grad).tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_gradients_accumulate_and_graph_is_freed(xp):
    a = mr.tensor(xp.asarray([1.0, 2.0], dtype=xp.float32), requires_grad=True)
    y = (a * a).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="graph was freed"):
        y.backward()
    (a * 3).sum().backward()
    assert mr.backend.to_numpy(a.grad).tolist() == [5.0, 7.0]          # 2a + 3, accumulated


def test_retain_graph_allows_second_backward(xp):
    a = mr.tensor(xp.asarray([1.0, 2.0], dtype=xp.float32), requires_grad=True)
    y = (a * a).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert mr.backend.to_numpy(a.grad).tolist() == [4.0, 8.0]


def test_no_grad_and_detach(xp):
    a = mr.tensor(xp.ones(2, dtype=xp.float32), requires_grad=True)
    with mr.no_grad():
        y = a * 2
    assert not y.requires_grad and y.creator is None
    d = (a * 2).detach()
    assert not d.requires_grad and d.creator is None


def test_diamond_graph(xp):
    """A value used by two branches gets the sum of both gradients."""
    a = mr.tensor(xp.asarray([3.0], dtype=xp.float64), requires_grad=True)
    b = a * 2
    y = (b * b + b.exp()).sum()
    y.backward()
    expected = 8 * 3.0 + 2 * np.exp(6.0)
    assert abs(mr.backend.to_numpy(a.grad).item() - expected) < 1e-9


def test_gradcheck_reports_worst_element(xp):
    class BadSquare(mr.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, gy):
            (x,) = self.saved
            return gy * x               # wrong: should be 2x

    a = t64(xp, (3,), 0.5, 1.0)
    with pytest.raises(mr.GradcheckError, match=r"input 0 \(shape \(3,\)\) at index"):
        mr.gradcheck(BadSquare.apply, a)


def test_to_device_and_numpy(xp, device):
    a = mr.tensor(np.arange(3, dtype=np.float32)).to(device)
    assert a.device == device
    assert isinstance(a.numpy(), np.ndarray)
    assert a.to("cpu").device == "cpu"


def test_cuda_request_without_gpu_explains_install():
    if mr.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=r"pip install -e \"\.\[gpu\]\""):
        mr.use("cuda")


ENGINE = pathlib.Path(mr.__file__).parent


# Files that run where minirect cannot be imported: the grading child process and the
# student-side code of the build-it-yourself track (a student's engine is NumPy only).
WITHOUT_MINIRECT = {"exercises/sandbox_child.py", "exercises/drivers.py", "exercises/build_reference.py",
                    "exercises/templates/engine.py"}


def test_only_backend_imports_numpy_or_cupy():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        if path.name == "backend.py" or path.relative_to(ENGINE).as_posix() in WITHOUT_MINIRECT:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for n in names:
                if n.split(".")[0] in ("numpy", "cupy", "cupyx"):
                    offenders.append(f"{path.relative_to(ENGINE)} imports {n}")
    assert offenders == []


def test_import_without_cupy_is_lazy():
    import subprocess
    import sys
    code = ("import sys; import minirect; "
            "assert 'cupy' not in sys.modules, 'cupy imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_inside_tuple_index_accumulates(xp):
    a = mr.tensor(xp.zeros((3, 2), dtype=xp.float32), requires_grad=True)
    a[[0, 0], :].sum().backward()
    assert mr.backend.to_numpy(a.grad).tolist() == [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]


def test_tensor_and_parameter_copy_their_input():
    arr = np.ones(3, dtype=np.float32)
    t = mr.tensor(arr)
    p = mr.nn.Parameter(arr)
    t.data += 1
    p.data -= 1
    assert arr.tolist() == [1.0, 1.0, 1.0]
    # Each on its own (above, +1 and -1 could cancel on a shared array).
    assert not np.shares_memory(t.data, arr) and not np.shares_memory(p.data, arr)
    assert not np.shares_memory(mr.nn.Parameter(mr.Tensor(arr)).data, arr)


def test_backward_takes_a_python_list_as_grad_in_the_outputs_dtype():
    x = mr.tensor(np.ones(2), requires_grad=True)          # float64
    (x * 3.0).backward([1.0, 2.0])
    assert mr.backend.dtype(x.grad.dtype) == np.float64 and mr.backend.to_numpy(x.grad).tolist() == [3.0, 6.0]


def test_forward_and_backward_leave_inputs_unchanged(xp):
    for name, (fn, sa, sb) in BINARY.items():
        a = mr.tensor(xp.asarray(RNG.uniform(0.5, 2, sa)), requires_grad=True)
        b = mr.tensor(xp.asarray(RNG.uniform(0.5, 2, sb)), requires_grad=True)
        before = a.numpy().copy(), b.numpy().copy()
        fn(a, b).sum().backward()
        assert np.array_equal(a.numpy(), before[0]) and np.array_equal(b.numpy(), before[1]), name


def test_backward_checks_gradient_dtype():
    class Leaky64(mr.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return (gy * 2).astype("float64")      # a float64 leak in a float32 graph

    x = mr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="does not match input"):
        Leaky64.apply(x).sum().backward()


def test_gradcheck_handles_scalars_and_non_contiguous_inputs(xp):
    s = mr.tensor(xp.asarray(0.3, dtype=xp.float64), requires_grad=True)
    a = mr.Tensor(xp.asarray(RNG.uniform(-1, 1, (4, 3))).T, requires_grad=True)   # a transposed view
    assert mr.gradcheck(lambda s, a: (a * s).tanh(), s, a)
