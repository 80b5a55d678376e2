"""Teaching routes of Lab 2.3 · 02 (enabled with GATEWAY_DEMO_ROUTES=1): the same CPU work called three
ways, a Server-Sent-Events stream of work chunks, and the event loop's lag samples.

- `POST /demo/work/blocking`   `async def` that calls the work directly: the event loop (every other
  request of this process) waits until it is done;
- `POST /demo/work/threadpool` plain `def`: FastAPI runs it in its thread pool; the loop keeps running,
  but pure-Python work still competes with it for the GIL;
- `POST /demo/work/process`    `async def` that awaits a process pool: the loop is free, the work runs
  on another core.
- `POST /demo/stream`          SSE, one event per chunk; a client that disconnects stops the work.
"""

import asyncio
import json
import os
import time

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from gateway.work import chunk_bounds, count_primes, count_primes_where
from starlette.concurrency import run_in_threadpool


def demo_router(app: FastAPI, work_model) -> APIRouter:
    router = APIRouter(prefix="/demo", tags=["demo (Lab 2.3 · 02)"])
    state = app.state.gateway

    def answer(kind: str, n: int, primes: int, began: float, computed_in: int | None = None) -> dict:
        state.work_chunks_started += 1
        state.metrics.work_chunks.inc()
        state.work_chunks_done += 1
        return {"kind": kind, "n": n, "primes": primes, "seconds": time.perf_counter() - began,
                "pid": os.getpid(), "computed_in_pid": computed_in or os.getpid()}

    @router.post("/work/blocking", summary="CPU work inside async def (blocks the event loop)")
    async def work_blocking(body: work_model) -> dict:
        began = time.perf_counter()
        return answer("blocking", body.n, count_primes(0, body.n), began)

    @router.post("/work/threadpool", summary="CPU work in a plain def route (FastAPI's thread pool)")
    def work_threadpool(body: work_model) -> dict:
        began = time.perf_counter()
        return answer("threadpool", body.n, count_primes(0, body.n), began)

    @router.post("/work/process", summary="CPU work in a process pool, awaited")
    async def work_process(body: work_model) -> dict:
        began = time.perf_counter()
        loop = asyncio.get_running_loop()
        primes, pid = await loop.run_in_executor(state.process_pool, count_primes_where, 0, body.n)
        return answer("process", body.n, primes, began, pid)

    @router.post("/stream", summary="SSE: one event per chunk of work; disconnecting stops the work")
    async def stream(body: work_model, request: Request) -> StreamingResponse:
        bounds = chunk_bounds(body.n, body.chunks)

        async def events():
            total = 0
            try:
                for index, (lo, hi) in enumerate(bounds):
                    began = time.perf_counter()
                    state.work_chunks_started += 1
                    primes = await run_in_threadpool(count_primes, lo, hi)
                    total += primes
                    state.metrics.work_chunks.inc()
                    state.work_chunks_done += 1
                    event = {"chunk": index, "of": len(bounds), "range": [lo, hi], "primes": primes,
                             "seconds": time.perf_counter() - began}
                    yield f"data: {json.dumps(event)}\n\n"
                yield f"data: {json.dumps({'done': True, 'primes': total})}\n\n"
            except asyncio.CancelledError:  # the client went away: stop here, count it
                state.metrics.disconnects.inc()
                state.stream_cancellations += 1
                raise

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @router.get("/stats", summary="work chunks done and cancelled streams in this process")
    async def stats() -> dict:
        return {"pid": os.getpid(), "work_chunks_started": state.work_chunks_started,
                "work_chunks_done": state.work_chunks_done,
                "stream_cancellations": state.stream_cancellations}

    @router.get("/loop-lag", summary="event-loop lag samples (time.monotonic(), lag seconds)")
    async def loop_lag(since: float = Query(0.0, ge=0.0, le=1e12)) -> dict:
        samples = [(t, lag) for t, lag in state.lag_samples if t >= since]
        return {"interval_s": state.settings.loop_lag_interval_s, "samples": samples}

    return router
