"""Reference answers to the auto-checked exercises, one module per notebook (spoilers: try first).

`llmserve.course.exercises.Exercises` reads them only with COURSE_SOLUTIONS=1, which `make test`
sets so that every check's correct path, and its rejection of a wrong answer, runs in CI. Each
module has `solutions(ns)` and `wrong_answers(ns)`, functions of the notebook's namespace.
"""
