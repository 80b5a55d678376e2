"""triton: tools only the Triton track needs (config.pbtxt, the TorchScript artefact, traces)."""
