"""llmserve: the helper package of the course "Efficient Inference & Serving".

Its rooms, each with one rule:

- `course`   machinery that is never taught: config and the course manifest, the session
             report, the pinned assets, `make check`, `make status`.
- `servers`  every process the course starts (vLLM, Triton, Prometheus, ...), each a context
             manager that is gone after `with`; the no-leak guarantee lives here.
- `measure`  produces numbers against something running: load generators, the Prometheus text
             parser, memory, the Hugging Face baseline, quantized variants.
- `teach`    pure logic with no I/O, unit-tested on fed-in data; each module names the theory
             section it implements.
- `triton`   tools only the Triton track needs (config.pbtxt, TorchScript, traces).
- `ops`      production artefacts checked by their real tools (Prometheus config, ...).
- `bench`    `make bench`, one module per entry.

The first cell of every notebook:

    from llmserve import session, workload
"""
from llmserve.course.config import CourseConfig, config, profile, workload

__all__ = ["CourseConfig", "config", "profile", "workload", "session"]
__version__ = "0.1.0"


def session(show: bool = True):
    """Describe this run (profile, machine, model, engines) and print it."""
    from llmserve.course.session import session as _session
    return _session(show)
