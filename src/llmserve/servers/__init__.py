"""servers: every process the course starts, each a context manager that is gone after `with`.

The rule: anything with a lifecycle that must be stopped lives here, and holds the no-leak
guarantee (own process group, parent-death signal, stop on exit and at interpreter exit).

    from llmserve.servers import VLLMServer, TritonServer, PrometheusServer, NginxServer, AlertmanagerServer, offline_engine
"""
from llmserve.servers.alertmanager import AlertmanagerServer, AlertWebhookReceiver, alertmanager_binary
from llmserve.servers.base import (
    OFFLINE_ENV,
    ManagedServer,
    PortInUseError,
    ServerStartError,
    find_server_processes,
    free_port,
    port_is_free,
    start_together,
    stop_all,
)
from llmserve.servers.batch import BatchFileStore, BatchJob, BatchResult, VLLMBatchJob, batch_input_lines
from llmserve.servers.exporters import NodeExporter, ProcessExporter
from llmserve.servers.nginx import NginxConfigError, NginxServer, nginx_binary
from llmserve.servers.offline import KVCacheReport, kv_cache_report, offline_engine, shutdown_engine
from llmserve.servers.otlp import OTLPTraceReceiver
from llmserve.servers.prometheus import PrometheusServer, prometheus_binary
from llmserve.servers.redis import ArqWorker, RedisServer, redis_binary
from llmserve.servers.router import RouterMetrics, VLLMRouterServer, router_binary
from llmserve.servers.triton import TritonServer
from llmserve.servers.uvicorn import GATEWAY_DIR, GatewayServer, UvicornServer
from llmserve.servers.vllm import VLLMServer, logged_engine_dtype

__all__ = ["OFFLINE_ENV", "KVCacheReport", "ManagedServer", "PortInUseError", "PrometheusServer",
           "ServerStartError", "TritonServer", "VLLMServer", "find_server_processes", "free_port",
           "kv_cache_report", "offline_engine", "port_is_free", "prometheus_binary", "shutdown_engine",
           "stop_all"]
__all__ += ["AlertWebhookReceiver", "AlertmanagerServer", "alertmanager_binary"]
__all__ += ["NodeExporter", "ProcessExporter"]
__all__ += ["OTLPTraceReceiver"]
__all__ += ["NginxConfigError", "NginxServer", "nginx_binary"]
__all__ += ["GATEWAY_DIR", "ArqWorker", "GatewayServer", "RedisServer", "UvicornServer", "redis_binary"]

__all__ += ["RouterMetrics", "VLLMRouterServer", "router_binary", "start_together"]

from llmserve.servers.facade import FacadeServer, MLServerServer, mlserver_binary, mlserver_status  # noqa: E402

__all__ += ["FacadeServer", "MLServerServer", "mlserver_binary", "mlserver_status"]
__all__ += ["BatchFileStore", "BatchJob", "BatchResult", "VLLMBatchJob", "batch_input_lines", "logged_engine_dtype"]
