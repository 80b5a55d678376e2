"""`python -m llmserve.bench`: the driver in `llmserve.bench.run` (see its docstring)."""
import sys

from llmserve.bench.run import main

if __name__ == "__main__":  # vLLM's engine processes re-import the main module: keep the guard
    sys.exit(main())
