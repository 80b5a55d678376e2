"""Durable background jobs: Redis holds the queue, arq workers run the jobs, the gateway submits and polls.

    POST /jobs          {"n": 300000, "chunks": 6}  -> 202 {"job_id": ..., "status": "queued"}
    GET  /jobs/{job_id}                             -> {"status": "queued" | "in_progress" | "complete", ...}

The worker is a separate process (`python -m arq gateway.jobs.WorkerSettings`, started by
`llmserve.servers.ArqWorker`). Durability comes from arq's "pessimistic execution": a job leaves the queue
only when it has finished. A worker that dies mid-job (SIGKILL, OOM, a lost node) leaves it queued with
an in-progress lease (the job's timeout + 10 s); when the lease runs out, any worker runs it again, with
`job_try` counting the attempts. A job must therefore be safe to run twice (idempotent).
"""
from __future__ import annotations

import asyncio
import os
import time

from arq import func
from fastapi import APIRouter, FastAPI
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.work import chunk_bounds, count_primes
from pydantic import BaseModel, Field

QUEUE = "arq:queue"


class JobRequest(BaseModel):
    model_config = {"extra": "forbid"}
    n: int = Field(300_000, ge=1, le=5_000_000, description="count the primes below n")
    chunks: int = Field(6, ge=1, le=100, description="the job reports progress after each chunk")


class JobAccepted(BaseModel):
    job_id: str
    status: str
    poll: str


class JobState(BaseModel):
    job_id: str
    status: str
    progress: int | None = Field(None, description="chunks finished in the current try")
    result: dict | None = None
    error: str | None = None


def _progress_key(job_id: str) -> str:
    return f"gateway:job-progress:{job_id}"


async def count_primes_job(ctx: dict, n: int, chunks: int) -> dict:
    """The job: count primes below n chunk by chunk, recording progress in Redis after each chunk."""
    began, total = time.perf_counter(), 0
    for index, (lo, hi) in enumerate(chunk_bounds(n, chunks)):
        total += await asyncio.to_thread(count_primes, lo, hi)
        await ctx["redis"].set(_progress_key(ctx["job_id"]), index + 1, ex=3600)
    return {"primes": total, "n": n, "chunks": chunks, "job_try": ctx["job_try"], "worker_pid": os.getpid(),
            "seconds": time.perf_counter() - began}


def worker_settings() -> Settings:
    """The worker's settings: the same GATEWAY_* variables as the gateway (GATEWAY_REDIS_URL, GATEWAY_JOB_TIMEOUT_S)."""
    return Settings.from_env()


def _redis_settings(settings: Settings):
    from arq.connections import RedisSettings
    if not settings.redis_url:
        raise RuntimeError("GATEWAY_REDIS_URL is not set (e.g. redis://127.0.0.1:6379)")
    return RedisSettings.from_dsn(settings.redis_url)


class WorkerSettings:
    """`python -m arq gateway.jobs.WorkerSettings` reads this class (in the worker process)."""

    _settings = worker_settings() if os.environ.get("GATEWAY_REDIS_URL") else Settings()
    functions = [func(count_primes_job, timeout=_settings.job_timeout_s, max_tries=3)]
    redis_settings = _redis_settings(_settings) if _settings.redis_url else None
    health_check_interval = 1  # seconds between writes of the health-check key
    keep_result = 3600
    max_jobs = 2
    poll_delay = 0.2  # seconds between polls of the queue when it is empty


def jobs_router(app: FastAPI) -> APIRouter:
    from arq.jobs import Job, JobStatus

    router = APIRouter(prefix="/jobs", tags=["jobs"])
    state = app.state.gateway

    def pool():
        if state.job_pool is None:
            raise GatewayError(503, "the job queue (Redis) is not connected yet", code="not_ready",
                               headers={"Retry-After": "1"})
        return state.job_pool

    @router.post("", status_code=202, response_model=JobAccepted, summary="enqueue a durable job")
    async def submit(body: JobRequest) -> JobAccepted:
        job = await pool().enqueue_job("count_primes_job", body.n, body.chunks)
        state.metrics.jobs_submitted.inc()
        return JobAccepted(job_id=job.job_id, status="queued", poll=f"/jobs/{job.job_id}")

    @router.get("/{job_id}", response_model=JobState, summary="status, progress and result of a job")
    async def poll(job_id: str) -> JobState:
        redis = pool()
        job = Job(job_id, redis)
        status = await job.status()
        if status == JobStatus.not_found:
            raise GatewayError(404, f"no job {job_id!r} (never submitted, or its result expired)",
                               code="job_not_found", param="job_id")
        progress = await redis.get(_progress_key(job_id))
        reply = JobState(job_id=job_id, status=status.value, progress=int(progress) if progress else None)
        if status == JobStatus.complete:
            info = await job.result_info()
            if info.success:
                reply.result = info.result
            else:
                reply.error = f"{type(info.result).__name__}: {info.result}"
        return reply

    return router
