"""scorer_import_error: BROKEN on purpose (Triton Lab 2.5 · 04). A change to scorer's model.py that imports a class
the installed triton_course_models does not have (code written against a newer package than the image holds).
"""
from triton_course_models.mlp import CalibratedMLP


class TritonPythonModel(CalibratedMLP):
    """Never loads: the import above raises ImportError in the stub, before initialize()."""
