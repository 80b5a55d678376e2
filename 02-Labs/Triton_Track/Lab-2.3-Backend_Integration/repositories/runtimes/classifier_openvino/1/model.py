"""classifier_openvino: the Lab 2.3 classifier on OpenVINO (CPU plugin, f32) on the IR model.xml + model.bin (what the openvino backend runs in C++).

X fp32 [batch, 16] -> LOGITS fp32 [batch, 4], CLASS int64 [batch, 1]; the runtime and its thread count come
from config.pbtxt. Logic: triton_course_models.backend_model.RuntimeClassifier.
"""
from triton_course_models.backend_model import RuntimeClassifier


class TritonPythonModel(RuntimeClassifier):
    pass
