"""An assignment graded end to end with Otter-Grader (the `grading` extra): generate, run, read scores."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("otter")

from minirect import exercises  # noqa: E402

STUDENT = pathlib.Path(__file__).parent / "course" / "student_capstone.py"
OTTER = [sys.executable, "-m", "otter"]


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assignment")
    assert exercises.main(["assignment", str(folder), "--only", "relu_backward", "msra_std",
                           "--seed", "4242"]) == 0
    assert sorted(p.name for p in (folder / "tests").iterdir()) == ["msra_std.py", "relu_backward.py"]
    assert "def relu_backward(x, gy):" in (folder / "student.py").read_text()
    subprocess.run(OTTER + ["generate", "-t", "tests"], cwd=folder, check=True, capture_output=True)
    return folder / "autograder.zip"


def _run(autograder, text, tmp_path):
    submission = tmp_path / "answers.py"
    submission.write_text(text)
    subprocess.run(OTTER + ["run", "-a", str(autograder), str(submission), "--no-logo", "-o", str(tmp_path)],
                   cwd=tmp_path, check=True, capture_output=True)
    results = json.loads((tmp_path / "results.json").read_text())
    return {t["name"]: t for t in results["tests"] if "score" in t}


def test_a_correct_file_gets_full_marks(autograder, tmp_path):
    scores = _run(autograder, STUDENT.read_text(), tmp_path)
    assert {n: t["score"] for n, t in scores.items()} == {"relu_backward": 1, "msra_std": 1}


def test_a_wrong_answer_scores_zero_with_minirects_hint(autograder, tmp_path):
    wrong = STUDENT.read_text().replace("math.sqrt(2.0 /", "math.sqrt(1.0 /")
    scores = _run(autograder, wrong, tmp_path)
    assert scores["relu_backward"]["score"] == 1 and scores["msra_std"]["score"] == 0
    assert "FAIL msra_std" in scores["msra_std"]["output"] and "hint:" in scores["msra_std"]["output"]


def test_copied_solutions_score_zero(autograder, tmp_path):
    copied = "from minirect import exercises\nrelu_backward = exercises.solution('relu_backward')\n"
    scores = _run(autograder, copied, tmp_path)
    assert scores["relu_backward"]["score"] == 0 and scores["msra_std"]["score"] == 0
    assert "imports minirect" in scores["relu_backward"]["output"]


def test_the_grading_seed_stays_in_the_autograder(autograder, tmp_path):
    shutil.unpack_archive(autograder, tmp_path / "unpacked", "zip")
    text = (tmp_path / "unpacked" / "tests" / "relu_backward.py").read_text()
    assert "seed=4242" in text
