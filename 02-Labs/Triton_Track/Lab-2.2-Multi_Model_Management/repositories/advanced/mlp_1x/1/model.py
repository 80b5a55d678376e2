"""mlp_1x: the baseline: one CPU instance, no queue settings (the default scheduler's queue).

Every advanced/mlp_* model runs triton_course_models.mlp.ResidualMLP on purpose, so that notebook 04 measures only
what config.pbtxt changes. depth = 8 layers of (64 x 512) @ (512 x 512), 2*64*512*512 = 33.55 MFLOP each.
"""
from triton_course_models.mlp import ResidualMLP


class TritonPythonModel(ResidualMLP):
    """The depth comes from config.pbtxt's `depth` parameter; non-finite X is a client error (HTTP 400)."""
