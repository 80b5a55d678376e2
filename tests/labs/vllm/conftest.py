"""vLLM Lab 2.3's gateway is a package in the lab folder (`service/gateway`): make it importable."""
import sys

from llmserve.servers import GATEWAY_DIR

if str(GATEWAY_DIR) not in sys.path:
    sys.path.insert(0, str(GATEWAY_DIR))
