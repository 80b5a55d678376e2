"""bench: `make bench`, the course's headline ratios measured side by side in one run.

One module per entry (throughput, continuous_batching, prefix_caching, speculative_ngram,
speculative_teaching, quantization, roofline, cpu_levers), each with its measurement, its
figures and its plot; `common` holds what they share and `run` is the driver.
"""
