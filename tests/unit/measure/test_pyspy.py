"""py-spy's collapsed stacks read and attributed (pure, on fed-in text), and one real recording of a busy process."""
import subprocess
import sys

import pytest

from llmserve.measure.pyspy import NO_PYTHON_FRAME, Profile, PySpyRecording, frame_function, parse_collapsed

RAW = """\
<module> (<string>:1);step (vllm/v1/engine/core.py:668);forward (vllm/model_executor/models/llama.py:436);onednn_mm (vllm/_custom_ops.py:3758);__call__ (torch/_ops.py:1279) 30
<module> (<string>:1);step (vllm/v1/engine/core.py:668);forward (vllm/model_executor/models/llama.py:436);fused_add_rms_norm (vllm/ir/ops/layernorm.py:58) 12
<module> (<string>:1);step (vllm/v1/engine/core.py:668);forward (vllm/model_executor/models/llama.py:436);fused_add_rms_norm (vllm/ir/ops/layernorm.py:61) 3
<module> (<string>:1);step (vllm/v1/engine/core.py:668);schedule (vllm/v1/core/sched/scheduler.py:301) 5
"""
CATEGORIES = [("matmuls", ["onednn_mm"]), ("norms", ["layernorm"]), ("model, other", ["models/llama.py"]),
              ("scheduler", ["core/sched"])]


def test_collapsed_stacks_are_parsed_and_attributed_from_the_leaf():
    profile = Profile(parse_collapsed(RAW))
    assert profile.total == 50 and len(profile.stacks) == 4
    assert profile.stacks[3] == (("<module> (<string>:1)", "step (vllm/v1/engine/core.py:668)",
                                  "schedule (vllm/v1/core/sched/scheduler.py:301)"), 5)
    # the matmul is inside the model's forward: the innermost recognisable layer wins
    assert profile.by_category(CATEGORIES) == {"matmuls": 30, "norms": 15, "model, other": 0, "scheduler": 5,
                                               "other": 0}
    assert profile.top_leaves(2) == [("__call__ (torch/_ops.py)", 30), ("fused_add_rms_norm (vllm/ir/ops/layernorm.py)", 15)]
    assert profile.inclusive("models/llama.py") == 45
    assert frame_function("f (a/b.py:12)") == "f (a/b.py)" and frame_function("<unknown>") == "<unknown>"
    with pytest.raises(ValueError, match="collapsed-stack"):
        parse_collapsed("no count here\n")
    assert parse_collapsed(" 3\n") == [((NO_PYTHON_FRAME,), 3)]  # a sample without any Python frame


BUSY = """
def spin_in_here():
    total = 0
    while True:
        total += 1

spin_in_here()
"""


def test_a_real_recording_finds_the_busy_function():
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        with PySpyRecording(busy.pid, duration_s=1, rate_hz=50) as recording:
            pass  # the busy process is the work; py-spy records it for a second
        profile = recording.profile()
    finally:
        busy.kill()
        busy.wait()
    assert profile.total >= 10
    assert profile.top_leaves(1)[0][0] == "spin_in_here (<string>)"
    assert "Samples:" in recording.log
