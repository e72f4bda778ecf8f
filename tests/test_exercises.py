"""minirect.exercises: every checker passes the reference and fails typical wrong answers."""

import math
import textwrap

import numpy as np
import pytest

from minirect import cli, exercises
from minirect.exercises import _EXERCISES, convolution, gradients, rectifiers, training

NAMES = exercises.names()
# the code exercises (a function to write); the understanding exercises have their own
# wrong answers in test_exercises_understanding.py
CODE_NAMES = [e.name for module in (gradients, rectifiers, convolution, training) for e in module.EXERCISES]


def _channel(a, ndim):
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def _pool_routing_all_maxima(x, gy, kernel_size, stride):
    """Wrong: every pixel equal to the window's maximum gets the gradient (ties duplicated)."""
    k, s = kernel_size, stride
    gx = np.zeros_like(x)
    for oh in range(gy.shape[2]):
        for ow in range(gy.shape[3]):
            window = x[:, :, oh * s:oh * s + k, ow * s:ow * s + k]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            gx[:, :, oh * s:oh * s + k, ow * s:ow * s + k] += mask * gy[:, :, oh:oh + 1, ow:ow + 1]
    return gx


def _pool_average(x, gy, kernel_size, stride):
    """Wrong: average pooling's backward."""
    k, s = kernel_size, stride
    gx = np.zeros_like(x)
    for oh in range(gy.shape[2]):
        for ow in range(gy.shape[3]):
            gx[:, :, oh * s:oh * s + k, ow * s:ow * s + k] += gy[:, :, oh:oh + 1, ow:ow + 1] / k**2
    return gx


def _sgd_pytorch(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    vW = momentum * vW + gW + weight_decay * W
    va = momentum * va + ga
    return W - lr * vW, vW, a - lr * va, va


def _sgd_decay_everywhere(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    vW = momentum * vW + lr * (gW + weight_decay * W)
    va = momentum * va + lr * (ga + weight_decay * a)
    return W - vW, vW, a - va, va


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _onehot(labels, k):
    return np.eye(k)[labels]


ref = exercises.solution

# Two (or more) typical wrong answers per exercise, written here independently of
# the mistakes the checker knows.
WRONG = {
    "mul_backward": [lambda a, b, gy: (gy * a, gy * b),
                     lambda a, b, gy: (gy * b, gy * b)],
    "div_backward": [lambda a, b, gy: (gy / b, gy * a / b**2),
                     lambda a, b, gy: (gy / b, -gy / b**2)],
    "sum_to": [lambda g, shape: g.sum(axis=0),
               lambda g, shape: g.reshape(-1)[:math.prod(shape)].reshape(shape)],
    "matmul_backward": [lambda a, b, gy: (gy @ b, a.T @ gy),
                        lambda a, b, gy: (gy @ b.T, gy.T @ a)],
    "relu_backward": [lambda x, gy: gy * (x >= 0),
                      lambda x, gy: gy * (x < 0)],
    "leaky_relu_backward": [lambda x, gy, slope: gy * (x > 0),
                            lambda x, gy, slope: np.where(x > 0, gy, slope)],
    "prelu_backward": [
        lambda x, a, gy: (np.where(x > 0, gy, _channel(a, x.ndim) * gy), (gy * np.minimum(x, 0)).sum(axis=0)),
        lambda x, a, gy: (gy * (x > 0), ref("prelu_backward")(x, a, gy)[1])],
    "prelu_shared_backward": [
        lambda x, a, gy: (np.where(x > 0, gy, a * gy),
                          (gy * np.minimum(x, 0)).sum(axis=(0,) + tuple(range(2, x.ndim)))),
        lambda x, a, gy: (np.where(x > 0, gy, a * gy), (gy * x).sum().reshape(1))],
    "max_pool2d_backward": [_pool_routing_all_maxima, _pool_average],
    "im2col": [lambda x, kh, kw, stride, padding: ref("im2col")(x, kh, kw, stride, padding).T,
               lambda x, kh, kw, stride, padding: ref("im2col")(x, kh, kw, stride, 0)],
    "conv2d_forward": [
        lambda x, W, b, stride, padding: ref("conv2d_forward")(x, W[:, :, ::-1, ::-1], b, stride, padding),
        lambda x, W, b, stride, padding: ref("conv2d_forward")(x, W, 0 * b, stride, padding)],
    "conv2d_backward": [
        lambda x, W, gy, s, p: (ref("conv2d_backward")(x, W, gy, s, p)[0],
                                ref("conv2d_backward")(x, W, gy, s, p)[1] / len(x)),      # mean over batch
        lambda x, W, gy, s, p: (np.zeros_like(x), ref("conv2d_backward")(x, W, gy, s, p)[1])],
    "softmax_cross_entropy_backward": [
        lambda logits, labels: _softmax(logits) - _onehot(labels, logits.shape[1]),
        lambda logits, labels: (_onehot(labels, logits.shape[1]) - _softmax(logits)) / len(labels)],
    "msra_std": [lambda shape, a, mode: math.sqrt(1 / (math.prod(shape[1:]))),
                 lambda shape, a, mode: math.sqrt(2 / math.prod(shape[1:] if mode == "fan_in"
                                                                else shape[:1] + shape[2:]))],
    "sgd_step": [_sgd_pytorch, _sgd_decay_everywhere],
}


def test_there_are_at_least_12_exercises_and_all_have_wrong_answers_here():
    assert len(NAMES) >= 12
    assert set(WRONG) == set(CODE_NAMES) and set(CODE_NAMES) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes(name, capsys):
    verdict = exercises.check(name, exercises.solution(name))
    assert verdict and verdict.passed
    out = capsys.readouterr().out
    assert out.startswith(f"PASS {name}") and out.count("\n") == 1     # one line
    assert any("gradcheck" in c.label for c in verdict.cases) == (_EXERCISES[name].forward is not None)


@pytest.mark.parametrize("name, which", [(n, k) for n in WRONG for k in range(len(WRONG[n]))])
def test_wrong_answer_fails(name, which, capsys):
    verdict = exercises.check(name, WRONG[name][which])
    assert not verdict
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith(f"FAIL {name}: case ")


@pytest.mark.parametrize("name", [n for n in NAMES if _EXERCISES[n].driver is None])
def test_every_known_mistake_fails_with_its_hint(name):
    # (driver tasks' mistakes are student namespaces, tested with the build-it-yourself track)
    exercise = _EXERCISES[name]
    assert len(exercise.mistakes) >= 2
    for mistake in exercise.mistakes:
        def wrong(*args, m=mistake):
            return m.fn(**dict(zip(exercise.parameters, args, strict=True)))
        verdict = exercises.check(name, wrong, quiet=True)
        assert not verdict and verdict.failure.hint == mistake.hint, str(verdict)


def test_failure_names_output_element_values_and_hint():
    def prelu_no_sum_over_positions(x, a, gy):
        gx = np.where(x > 0, gy, _channel(a, x.ndim) * gy)
        return gx, (gy * np.minimum(x, 0)).sum(axis=(0, 2))       # forgot axis 3
    verdict = exercises.check("prelu_backward", prelu_no_sum_over_positions, quiet=True)
    assert "output ga has shape (3, 5), expected (3,)" in str(verdict)
    assert "hint: ga has a's shape (C,)" in str(verdict)

    def prelu_ga_with_x(x, a, gy):
        gx = np.where(x > 0, gy, _channel(a, x.ndim) * gy)
        return gx, (gy * x).sum(axis=(0, 2, 3))
    text = str(exercises.check("prelu_backward", prelu_ga_with_x, quiet=True))
    assert "ga[0]: expected" in text and ", got " in text and "elements wrong" in text
    assert "only negative inputs" in text


@pytest.mark.parametrize("name, wrong, words", [
    ("msra_std", lambda shape, a, mode: ref("msra_std")(shape, a, mode) / math.sqrt(2), "factor ½"),
    ("matmul_backward", lambda a, b, gy: (gy @ b, a.T @ gy), "transposed"),
    ("softmax_cross_entropy_backward",
     lambda logits, labels: ref("softmax_cross_entropy_backward")(logits, labels) * len(labels),
     "divide by N"),
    ("div_backward", lambda a, b, gy: (gy / b, a * gy / b**2), "sign"),
    ("conv2d_backward", lambda x, W, gy, s, p: (ref("conv2d_backward")(x, W, gy, s, p)[0],
                                                ref("conv2d_backward")(x[:1], W, gy[:1], s, p)[1]),
     "sums over the whole batch"),
])
def test_hints_for_the_usual_mistakes(name, wrong, words):
    verdict = exercises.check(name, wrong, quiet=True)
    assert not verdict and words in verdict.failure.hint


def test_generic_hints_sign_factor_and_exceptions():
    neg = exercises.check("relu_backward", lambda x, gy: -gy * (x > 0), quiet=True)
    assert neg.failure.hint == "the sign is flipped"
    scaled = exercises.check("leaky_relu_backward", lambda x, gy, slope: 3 * np.where(x > 0, gy, slope * gy),
                             quiet=True)
    assert "same factor 3" in scaled.failure.hint
    broken = exercises.check("mul_backward", lambda a, b, gy: undefined_name, quiet=True)  # noqa: F821
    assert "raised NameError" in broken.failure.message and "mul_backward(a, b, gy)" in broken.failure.hint
    too_few = exercises.check("mul_backward", lambda a, b, gy: gy * b, quiet=True)
    assert "expected 2" in too_few.failure.message
    nothing = exercises.check("relu_backward", lambda x, gy: None, quiet=True)
    assert "None" in nothing.failure.message


def test_in_place_updates_are_refused():
    def in_place_sgd(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
        vW *= momentum
        vW += lr * (gW + weight_decay * W)
        va *= momentum
        va += lr * ga
        return W - vW, vW, a - va, va
    verdict = exercises.check("sgd_step", in_place_sgd, quiet=True)
    assert not verdict and "modified in place" in verdict.failure.message


def test_tensor_results_and_float64_answers_are_accepted():
    import minirect
    assert exercises.check("relu_backward", lambda x, gy: minirect.Tensor(gy * (x > 0)), quiet=True)
    assert exercises.check("mul_backward", lambda a, b, gy: ((gy * b).astype("float64"), gy * a), quiet=True)


def test_describe_and_solution():
    text = exercises.describe("conv2d_backward")
    assert "Signature: def conv2d_backward(x, W, gy, stride, padding) -> (gx, gW)" in text
    assert "Task:" in text and "Hint 1:" in text and "col2im" in text
    assert "Math:" not in text                       # hints lead to the formula; they do not state it
    assert callable(exercises.solution("msra_std"))
    with pytest.raises(KeyError, match="exercises.names"):
        exercises.describe("nope")


STUDENT = '''
import numpy as np

def relu_backward(x, gy):
    return gy * (x > 0)

def mul_backward(a, b, gy):
    return gy * a, gy * b          # swapped
'''


def test_command_line_grades_a_student_file(tmp_path, capsys):
    path = tmp_path / "student.py"
    path.write_text(textwrap.dedent(STUDENT))
    assert exercises.main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "PASS relu_backward" in out and "FAIL mul_backward" in out
    assert "hint: the factors are swapped" in out
    assert "MISSING conv2d_backward" in out
    assert f"1 of {len(NAMES)} exercises passed, {len(NAMES) - 2} missing" in out
    assert exercises.main(["check", str(path), "--only", "relu_backward"]) == 0
    assert capsys.readouterr().out.strip().endswith("1 of 1 exercises passed")
    # the same through the minirect command
    assert cli.main(["exercises", "check", str(path), "--only", "relu_backward", "mul_backward"]) == 1
    assert "1 of 2 exercises passed" in capsys.readouterr().out


def test_command_line_list_describe_and_errors(tmp_path, capsys):
    assert exercises.main(["list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(NAMES)
    assert exercises.main(["describe", "msra_std"]) == 0
    assert "Eq. 10" in capsys.readouterr().out
    assert exercises.main(["check", str(tmp_path / "absent.py")]) == 1
    with pytest.raises(SystemExit):
        exercises.main(["check", str(tmp_path / "absent.py"), "--only", "not_an_exercise"])
