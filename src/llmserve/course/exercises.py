"""Exercises that check themselves, and the switch that proves every check in CI.

A notebook's exercise cell leaves each answer as `None` (or a function that raises
NotImplementedError), registers one check per exercise, and runs them:

    exercises = Exercises("vllm_2_3_02", globals())

    @exercises.check("answer_burst_size", "answer_predicted_refused")
    def burst_prediction(size, predicted):
        refused = sum(status == 503 for status, *_ in burst(size))
        assert refused == predicted, f"{refused} of {size} were refused: how many can be in flight?"
        return f"{refused} of {size} refused"

    exercises.run()

A student who has not answered sees "not answered yet"; a wrong answer raises AssertionError with the
check's hint; a right one prints what the check measured.

With COURSE_SOLUTIONS=1 (`make notebooks` and so `make test` set it) the reference answers in
`llmserve.course.solutions.<key>` are used instead of the student's, so each check's correct path runs
against the live measurements of that very run. Then every check is run once more with a wrong
answer from the same module, and must reject it: a check that accepts a wrong answer fails the
notebook. A solutions module holds two functions of the notebook's namespace:

    def solutions(ns) -> dict[str, object]      # answer name -> reference answer
    def wrong_answers(ns) -> dict[str, object]  # answer name -> an answer its check must reject
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from types import ModuleType

SOLUTIONS_ENV = "COURSE_SOLUTIONS"


class ExerciseError(RuntimeError):
    """The exercise machinery itself is wrong (a check that accepts a wrong answer, a missing solution)."""


class CheckUnavailable(Exception):
    """Raised by a check when this run's measurements cannot decide it (say why): it is reported, not graded,
    and with the solutions switch no wrong answer is tried."""


def solutions_enabled() -> bool:
    return os.environ.get(SOLUTIONS_ENV, "") == "1"


def solutions_module(key: str) -> ModuleType:
    return importlib.import_module(f"llmserve.course.solutions.{key}")


@dataclass
class _Check:
    number: int
    names: tuple[str, ...]
    function: Callable[..., object]


class Exercises:
    """The auto-checked exercises of one notebook (see the module docstring)."""

    def __init__(self, key: str, namespace: MutableMapping[str, object], *,
                 solutions: ModuleType | None = None, enabled: bool | None = None):
        self.key = key
        self.namespace = namespace
        self.enabled = solutions_enabled() if enabled is None else enabled
        self._solutions = solutions
        self.checks: list[_Check] = []
        self.outcomes: dict[int, str] = {}

    def check(self, *names: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
        """Register the next numbered check; it receives the answers `names` in order."""
        if not names:
            raise ExerciseError("a check needs the names of the answers it checks")

        def register(function: Callable[..., object]) -> Callable[..., object]:
            self.checks.append(_Check(len(self.checks) + 1, names, function))
            return function
        return register

    def _module(self) -> ModuleType:
        if self._solutions is None:
            self._solutions = solutions_module(self.key)
        return self._solutions

    def run(self) -> None:
        """Run every check; `self.outcomes` then holds each check's outcome by number ("correct",
        "not answered", "unavailable", "rejected wrong answer"). Returns nothing, so a notebook cell shows only the prints."""
        self.outcomes = outcomes = {}
        reference: dict[str, object] = {}
        wrong: dict[str, object] = {}
        if self.enabled:
            module = self._module()
            reference = module.solutions(self.namespace)
            wrong = module.wrong_answers(self.namespace)
            print(f"{SOLUTIONS_ENV}=1: the reference answers of llmserve.course.solutions.{self.key} are checked, "
                  "then a wrong answer per check, which each check must reject.")
            for check in self.checks:
                missing = [n for n in check.names if n not in reference]
                if missing:
                    raise ExerciseError(f"check {check.number}: no reference answer for {missing} in {self.key}")
                if not any(n in wrong for n in check.names):
                    raise ExerciseError(f"check {check.number}: no wrong answer for any of {list(check.names)} "
                                        f"in {self.key}, so nothing proves the check can fail")
        for check in self.checks:
            label = ", ".join(check.names)  # the names the exercise text asks for
            values = [reference[n] if self.enabled else self.namespace.get(n) for n in check.names]
            if any(v is None for v in values):
                print(f"{label}: not answered yet")
                outcomes[check.number] = "not answered"
                continue
            try:
                message = check.function(*values)
            except CheckUnavailable as exc:
                print(f"{label}: cannot be checked on this run: {exc}")
                outcomes[check.number] = "unavailable"
                continue
            except NotImplementedError:
                if self.enabled:
                    raise ExerciseError(f"check {check.number}: the reference answer is not implemented") from None
                print(f"{label}: not written yet")
                outcomes[check.number] = "not answered"
                continue
            except AssertionError as exc:
                if self.enabled:
                    raise ExerciseError(f"check {check.number} rejected the reference answer: {exc}") from exc
                raise AssertionError(f"{label}: {exc}") from None
            print(f"{label}: correct" + (f": {message}" if message else ""))
            outcomes[check.number] = "correct"
            if self.enabled:
                wrong_values = [wrong.get(n, reference[n]) for n in check.names]
                try:
                    check.function(*wrong_values)
                except AssertionError as exc:
                    print(f"   and it rejects a wrong answer ({_short(wrong_values)}): {exc}")
                    outcomes[check.number] = "rejected wrong answer"
                else:
                    raise ExerciseError(f"check {check.number} accepted the wrong answer {_short(wrong_values)}")


def _short(values: list[object]) -> str:
    text = ", ".join(getattr(v, "__name__", None) or repr(v) for v in values)
    return text if len(text) <= 80 else text[:77] + "..."
