"""triton_course_models: the logic that several Triton Python-backend models of the course share.

It runs inside Triton's Python-backend stub (the `.venv-triton` environment, installed there by
`00-Course_Setup/setup.sh`), so it imports only the standard library, numpy, torch, transformers,
onnxruntime, openvino (Lab 2.3's runtimes) and `triton_python_backend_utils` (the stub's `pb_utils`), never the rest of `llmserve`
(tests/unit/triton_models/test_imports.py checks this).

A model's `model.py` keeps its docstring and only what differs, e.g.

    from triton_course_models.mlp import ResidualMLP

    class TritonPythonModel(ResidualMLP):
        depth = 4

Modules: `common` (inputs, one response per request, HTTP 400 for a client mistake, 500 otherwise),
`mlp` (the residual MLP of `advanced/mlp_*` and `lifecycle/scorer`), `sentiment` (zero-shot classifier of
`classifier` and `sentiment`), `embedder`, `tokenizer`, `pipeline` (the steps and BLS pipelines of Triton Lab
2.4 · 01), `batching` (the batched MLP and the running sum of 2.4 · 02), `compiled` (the torch.compile MLP of 2.4 · 03), and for Triton Lab 2.3 `classifier` (the model, plain torch),
`runtimes` (its four runtimes: torch eager, TorchScript, onnxruntime, openvino, each imported only by its
loader) and `backend_model` (the Python-backend model that runs one of them), and for Triton Lab 2.3 · 03 `chat` (the course LLM as a
chat model behind the unified façade). Unit-tested without a server through a fake pb_utils
(tests/unit/triton_models/).

Triton Lab 2.1's models do not use this package: there the `TritonPythonModel` interface is the lesson.
"""
