"""The exercise machinery: not answered, wrong, right, and the solutions switch that proves each check."""
import ast
import json
import re
import types

import pytest

from llmserve.course import exercises as ex
from llmserve.course.config import REPO_ROOT


def _module(solutions, wrong):
    module = types.ModuleType("fake_solutions")
    module.solutions = lambda ns: solutions
    module.wrong_answers = lambda ns: wrong
    return module


def _exercises(namespace, *, enabled=False, solutions=None, wrong=None):
    exercises = ex.Exercises("fake", namespace, enabled=enabled,
                             solutions=_module(solutions or {}, wrong or {}))

    @exercises.check("answer_sum")
    def sum_check(value):
        assert value == namespace["a"] + namespace["b"], f"{value} is not a + b: add the two"
        return f"{value}"

    @exercises.check("write_double")
    def double_check(function):
        assert function(3) == 6, "double(3) should be 6"

    return exercises


def test_unanswered_exercises_say_so_and_show_no_solution(capsys):
    def write_double(x):
        raise NotImplementedError
    exercises = _exercises({"a": 2, "b": 3, "answer_sum": None, "write_double": write_double})
    assert exercises.run() is None
    outcomes = exercises.outcomes
    out = capsys.readouterr().out
    assert outcomes == {1: "not answered", 2: "not answered"}
    assert "answer_sum: not answered yet" in out and "write_double: not written yet" in out
    assert "5" not in out


def test_a_wrong_answer_raises_with_the_hint():
    with pytest.raises(AssertionError, match=r"answer_sum: 4 is not a \+ b: add the two"):
        _exercises({"a": 2, "b": 3, "answer_sum": 4, "write_double": None}).run()


def test_a_right_answer_prints_correct(capsys):
    exercises = _exercises({"a": 2, "b": 3, "answer_sum": 5, "write_double": lambda x: 2 * x})
    exercises.run()
    outcomes = exercises.outcomes
    assert outcomes == {1: "correct", 2: "correct"}
    assert "answer_sum: correct: 5" in capsys.readouterr().out


def test_the_switch_checks_the_reference_and_proves_each_check_rejects_a_wrong_answer(capsys):
    namespace = {"a": 2, "b": 3, "answer_sum": None, "write_double": None}
    exercises = _exercises(namespace, enabled=True, solutions={"answer_sum": 5, "write_double": lambda x: 2 * x},
                           wrong={"answer_sum": 6, "write_double": lambda x: x + 2})
    exercises.run()
    outcomes = exercises.outcomes
    assert outcomes == {1: "rejected wrong answer", 2: "rejected wrong answer"}
    assert "rejects a wrong answer" in capsys.readouterr().out


def test_the_switch_fails_a_check_that_accepts_a_wrong_answer():
    namespace = {"a": 2, "b": 3}
    with pytest.raises(ex.ExerciseError, match="check 2 accepted the wrong answer"):
        # x * 2 is not wrong: the "wrong" answer is right, so the check cannot prove anything
        _exercises(namespace, enabled=True, solutions={"answer_sum": 5, "write_double": lambda x: 2 * x},
                   wrong={"answer_sum": 6, "write_double": lambda x: x * 2}).run()


def test_the_switch_fails_a_reference_the_check_rejects_or_a_missing_one():
    namespace = {"a": 2, "b": 3}
    with pytest.raises(ex.ExerciseError, match="check 1 rejected the reference answer"):
        _exercises(namespace, enabled=True, solutions={"answer_sum": 7, "write_double": lambda x: 2 * x},
                   wrong={"answer_sum": 6, "write_double": lambda x: x}).run()
    with pytest.raises(ex.ExerciseError, match="no reference answer for \\['write_double'\\]"):
        _exercises(namespace, enabled=True, solutions={"answer_sum": 5}, wrong={"answer_sum": 6}).run()
    with pytest.raises(ex.ExerciseError, match="no wrong answer"):
        _exercises(namespace, enabled=True, solutions={"answer_sum": 5, "write_double": lambda x: 2 * x},
                   wrong={"answer_sum": 6}).run()


def test_a_check_this_run_cannot_decide_is_reported_not_graded(capsys):
    exercises = ex.Exercises("fake", {}, enabled=True,
                             solutions=_module({"answer": 1}, {"answer": 2}))

    @exercises.check("answer")
    def undecidable(value):
        raise ex.CheckUnavailable("no request met the SLO")

    exercises.run()
    assert exercises.outcomes == {1: "unavailable"}
    assert "answer: cannot be checked on this run: no request met the SLO" in capsys.readouterr().out


def test_the_switch_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "1")
    assert ex.solutions_enabled() and ex.Exercises("x", {}).enabled
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "0")
    assert not ex.solutions_enabled()


def test_make_notebooks_runs_with_the_solutions():
    makefile = (REPO_ROOT / "Makefile").read_text()
    notebooks_rule = makefile.split("\nnotebooks:", 1)[1].split("\n\n", 1)[0]
    assert "COURSE_SOLUTIONS=" in notebooks_rule and ":-1}" in notebooks_rule


def _notebooks_using_exercises():
    found = {}
    for path in sorted((REPO_ROOT / "02-Labs").rglob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        match = re.search(r'Exercises\("(\w+)"', code)
        if match:
            names = [n for call in re.findall(r"exercises\.check\(([^)]*)\)", code)
                     for n in ast.literal_eval(f"[{call}]")]
            found[match.group(1)] = (path, names)
    return found


NOTEBOOKS = _notebooks_using_exercises()


def test_some_notebooks_use_the_checked_exercises():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("key", sorted(NOTEBOOKS))
def test_every_checked_answer_has_a_reference_and_every_check_a_wrong_answer(key):
    path, names = NOTEBOOKS[key]
    source = (REPO_ROOT / "src/llmserve/course/solutions" / f"{key}.py").read_text()
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"solutions", "wrong_answers"} <= set(functions), f"{key}.py needs solutions(ns) and wrong_answers(ns)"
    for name in names:
        assert re.search(rf"['\"]{name}['\"]", ast.unparse(functions["solutions"])), \
            f"{path.name}: no reference answer for {name} in solutions/{key}.py"
