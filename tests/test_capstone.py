"""The capstone: Figure 3 with the student's own functions swapped into the engine."""

import pathlib
import shutil

import pytest

from minirect import exercises
from minirect.exercises import capstone
from minirect.experiments import recipe, runner

STUDENT = pathlib.Path(__file__).parent / "course" / "student_capstone.py"


def _verdict_words(result):
    """'reproduced' / 'NOT reproduced' per seed, from the verdict lines."""
    return [line.rsplit("-> ", 1)[1] for line in result["summary"]["verdict"] if "-> " in line]


def test_capstone_with_correct_code_gives_the_verdict_of_reproduce(tmp_path, capsys):
    result, calls = capstone.train(STUDENT, tmp_path / "capstone", fast=True, progress=False)
    for name in ("relu_backward", "conv2d_forward", "conv2d_backward", "max_pool2d_backward",
                 "softmax_cross_entropy_backward", "msra_std", "sgd_step"):
        assert calls.student.get(name, 0) > 0, f"{name}: the student's code never ran"
    reference = runner.reproduce("fig3", str(tmp_path / "reproduce"), progress=False,
                                 config=recipe.make_config("fig3", fast=True), workers=1)
    assert _verdict_words(result) == _verdict_words(reference)
    ours = {(r["init"], r["seed"]): r["final_error"] for r in result["summary"]["runs"]}
    theirs = {(r["init"], r["seed"]): r["final_error"] for r in reference["summary"]["runs"]}
    assert ours.keys() == theirs.keys()
    for key in ours:        # float32 rounding apart, the same training
        assert ours[key] == pytest.approx(theirs[key], abs=0.05)


def test_capstone_restores_the_engine_afterwards(tmp_path):
    from minirect import accel, init
    from minirect.functional import activations
    before = (activations.ReLU.backward, init.msra_std, accel.enabled())
    capstone.train(STUDENT, tmp_path / "c", fast=True, epochs=1, progress=False)
    assert (activations.ReLU.backward, init.msra_std, accel.enabled()) == before


def test_a_wrong_backward_is_refused_naming_the_exercise(tmp_path, capsys):
    wrong = tmp_path / "student.py"
    text = STUDENT.read_text().replace("np.where(x > 0, gy, 0 * gy)", "np.where(x > 0, 0 * gy, gy)")
    wrong.write_text(text)
    out = tmp_path / "out"
    assert exercises.main(["train", str(wrong), "--fast", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "relu_backward fails its check" in err
    assert f"minirect exercises check {wrong} --only relu_backward" in err
    assert not out.exists()                               # nothing trained


def test_functions_the_student_has_not_written_come_from_minirect(tmp_path, capsys):
    partial = tmp_path / "student.py"
    shutil.copy(STUDENT, partial)
    text = partial.read_text()
    partial.write_text(text[:text.index("def prelu_backward")])     # only relu_backward
    assert exercises.main(["train", str(partial), "--fast", "--epochs", "1",
                           "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "relu_backward                    yours" in out
    assert "conv2d_backward                  minirect (not in your file)" in out
    assert "-> " in out and "criterion:" in out


def test_a_file_that_imports_minirect_cannot_run_the_capstone(tmp_path, capsys):
    cheat = tmp_path / "student.py"
    cheat.write_text("from minirect.exercises import solution\nrelu_backward = solution('relu_backward')\n")
    assert exercises.main(["train", str(cheat), "--fast", "--out", str(tmp_path / "o")]) == 1
    assert "imports minirect" in capsys.readouterr().err
