"""llmserve: the helper package of the course "Efficient Inference & Serving".

What lives here: the course model and the Triton install (`assets`), the session
report for the first cell of every notebook (`session`), real servers as context
managers (`servers`, `engines`), the formulas the theory teaches (`formulas`), and
small teaching implementations, each with unit tests under `tests/`.
"""
from llmserve.config import CourseConfig, config, profile, workload

__all__ = ["CourseConfig", "config", "profile", "workload", "session"]
__version__ = "0.1.0"


def session(show: bool = True):
    """Describe this run (profile, machine, model, engines) and print it."""
    from llmserve.session import session as _session
    return _session(show)
