"""Grading a course can trust: `minirect exercises check` in a separate process.

A correct file passes; the usual shortcuts (copying exercises.solution, using
minirect's autograd, patching the grader) and the usual accidents (an endless
loop, exit(), complex or non-finite values, a missing function, a file that is
not Python) each get a failing grade with a one-line reason, never a hang or
a silent exit status 0.
"""

import json
import textwrap

import pytest

from minirect import exercises
from minirect.exercises import sandbox

GOOD = '''
import numpy as np
import math

def relu_backward(x, gy):
    return gy * (x > 0)

def mul_backward(a, b, gy):
    return gy * b, gy * a
'''

# The three bypasses a student might try (issue: each scored 15/15 before).
COPIED = '''
from minirect import exercises
for _name in exercises.names():
    globals()[_name] = exercises.solution(_name)
'''
AUTOGRAD = '''
import numpy as np
import minirect.functional as F
from minirect import Tensor

def relu_backward(x, gy):
    t = Tensor(x, requires_grad=True)
    F.relu(t).backward(gy)
    return t.grad
'''
PATCHED = '''
import minirect.exercises._checker as checker
checker.CaseResult.passed = True

def relu_backward(x, gy):
    return x
'''
DYNAMIC = '''
m = __import__("mini" + "rect")
def relu_backward(x, gy):
    return m.exercises.solution("relu_backward")(x, gy)
'''
SOURCE = '''
import numpy as np
text = np.loadtxt("/some/where/minirect/exercises/rectifiers.py", dtype=str, delimiter="\\n")
'''
LOOP = '''
def relu_backward(x, gy):
    while True:
        pass

def mul_backward(a, b, gy):
    exit(3)
'''
ODD = '''
import numpy as np

def relu_backward(x, gy):
    return (gy * (x > 0)).astype(complex)

def mul_backward(a, b, gy):
    return gy * np.inf, gy * a
'''
RAISES = '''
def relu_backward(x, gy):
    raise KeyboardInterrupt

def mul_backward(a, b, gy):
    raise SystemExit
'''


def _file(tmp_path, text, name="student.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _check(path, *extra):
    return exercises.main(["check", str(path), "--only", "relu_backward", "mul_backward", *extra])


def test_a_correct_file_passes_in_a_child_process(tmp_path, capsys):
    assert _check(_file(tmp_path, GOOD)) == 0
    out = capsys.readouterr().out
    assert "PASS relu_backward" in out and "PASS mul_backward" in out
    assert out.strip().endswith("2 of 2 exercises passed")


@pytest.mark.parametrize("text, line, what", [(COPIED, 2, "imports minirect"),
                                              (AUTOGRAD, 3, "imports minirect.functional"),
                                              (PATCHED, 2, "imports minirect.exercises._checker"),
                                              (DYNAMIC, 2, "uses __import__()"),
                                              (SOURCE, 3, "uses .loadtxt")])
def test_answers_borrowed_from_minirect_are_refused_naming_the_line(tmp_path, capsys, text, line, what):
    assert _check(_file(tmp_path, text)) == 1
    captured = capsys.readouterr()
    assert f"student.py line {line}: {what}" in captured.err
    assert captured.out.count("REFUSED ") == 2                 # one line per exercise
    assert "0 of 2 exercises passed" in captured.out


def test_the_child_cannot_import_minirect_even_without_the_static_check(tmp_path):
    path = _file(tmp_path, AUTOGRAD)
    verdict = sandbox.grade_in_child(exercises._get("relu_backward"), path)
    assert not verdict and "minirect cannot be imported while grading" in verdict.line()


def test_an_endless_loop_times_out_and_exit_is_a_failing_grade(tmp_path, capsys):
    assert _check(_file(tmp_path, LOOP), "--timeout", "3") == 1
    out = capsys.readouterr().out
    assert "FAIL relu_backward" in out and "timed out after 3 s" in out
    assert "FAIL mul_backward" in out and "called exit()" in out and "line 7" in out


def test_interrupts_from_student_code_are_failing_grades(tmp_path, capsys):
    assert _check(_file(tmp_path, RAISES)) == 1
    out = capsys.readouterr().out
    assert "raised KeyboardInterrupt" in out and "raised SystemExit" in out


def test_complex_and_non_finite_values_fail_with_a_reason(tmp_path, capsys):
    assert _check(_file(tmp_path, ODD)) == 1
    out = capsys.readouterr().out
    assert "returned complex values" in out
    assert "non-finite value(s)" in out


def test_memory_limit(tmp_path, capsys):
    path = _file(tmp_path, '''
        import numpy as np
        def relu_backward(x, gy):
            return np.ones((1 << 30,), dtype=np.uint8)[:0].sum() + gy * (x > 0)
        ''')
    assert exercises.main(["check", str(path), "--only", "relu_backward", "--memory", "512"]) == 1
    assert "ran out of memory" in capsys.readouterr().out


def test_missing_functions_and_files_that_are_not_python(tmp_path, capsys):
    assert _check(_file(tmp_path, "import numpy as np\n")) == 1
    out = capsys.readouterr().out
    assert "MISSING relu_backward" in out and "0 of 2 exercises passed, 2 missing" in out
    assert _check(_file(tmp_path, "relu_backward = 1\n", "notes.txt")) == 1
    captured = capsys.readouterr()
    assert "notes.txt is not a .py file" in captured.err and captured.out.count("REFUSED") == 2
    assert _check(tmp_path / "absent.py") == 1
    assert "no such file" in capsys.readouterr().err
    assert _check(_file(tmp_path, "def relu_backward(x, gy)\n    return x\n")) == 1
    assert "not valid Python" in capsys.readouterr().err


def test_the_students_own_modules_are_allowed_and_checked_too(tmp_path, capsys):
    _file(tmp_path, "import numpy as np\ndef mask(x):\n    return x > 0\n", "helpers.py")
    path = _file(tmp_path, "from helpers import mask\ndef relu_backward(x, gy):\n    return gy * mask(x)\n")
    assert exercises.main(["check", str(path), "--only", "relu_backward"]) == 0
    _file(tmp_path, "import minirect\n", "helpers.py")
    assert exercises.main(["check", str(path), "--only", "relu_backward"]) == 1
    assert "helpers.py line 1: imports minirect" in capsys.readouterr().err


def test_a_teachers_seed_gives_cases_the_student_never_saw(tmp_path, capsys):
    relu = exercises._get("relu_backward")
    practice = exercises._checker.cases_for(relu, 0)
    graded = exercises._checker.cases_for(relu, 12345)
    assert [c.label for c in practice] == [c.label for c in graded]
    assert not (practice[0].args["x"] == graded[0].args["x"]).all()
    # A file that memorised the practice cases passes seed 0 and fails the teacher's seed.
    x, gy = practice[0].args["x"], practice[0].args["gy"]
    table = {"x": x.tolist(), "g": (gy * (x > 0)).tolist()}
    path = _file(tmp_path, f'''
        import numpy as np
        TABLE = {table!r}
        def relu_backward(x, gy):
            if x.shape == np.asarray(TABLE["x"]).shape and np.allclose(x, TABLE["x"]):
                return np.asarray(TABLE["g"], dtype=x.dtype)
            return gy
        ''')
    seed0 = sandbox.grade_in_child(relu, path, seed=0)
    assert seed0.cases[0].passed                     # the memorised case
    assert exercises.main(["check", str(path), "--only", "relu_backward", "--seed", "12345"]) == 1
    assert "case 1/" in capsys.readouterr().out


def test_json_report_for_grading_tools(tmp_path, capsys):
    out = tmp_path / "grades.json"
    _check(_file(tmp_path, GOOD.replace("gy * b, gy * a", "gy * a, gy * b")), "--json", str(out))
    grades = json.loads(out.read_text())
    assert grades["passed"] == 1 and grades["total"] == 2 and grades["seed"] == 0
    by_name = {r["name"]: r for r in grades["exercises"]}
    assert by_name["relu_backward"]["status"] == "pass" and by_name["relu_backward"]["score"] == 1
    assert by_name["mul_backward"]["status"] == "fail" and by_name["mul_backward"]["score"] == 0
    assert by_name["mul_backward"]["hint"]
    assert {"unit", "stars", "title", "max_score", "message"} <= set(by_name["mul_backward"])


def test_bad_seed_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        _check(_file(tmp_path, GOOD), "--seed", "-1")
    assert exit_info.value.code == 2
