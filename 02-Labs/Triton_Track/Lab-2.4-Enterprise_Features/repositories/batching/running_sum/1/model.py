"""running_sum: a sequence-batched stateful model (Triton Lab 2.4 · 02).

VALUE int32 [1] -> SUM int64 [1] (the sequence's running sum), STEP int32 [1], HELD int32 [1] (sequences held).
START, END and CORRID are control inputs the sequence batcher fills in (config.pbtxt).
Logic: triton_course_models.batching.RunningSum.
"""
from triton_course_models.batching import RunningSum


class TritonPythonModel(RunningSum):
    pass
