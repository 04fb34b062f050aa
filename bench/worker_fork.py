"""How much does preloading save per job? `python -m bench.worker_fork [N]`

Runs N no-op portal jobs (a reconcile) through the real PortalWorker, which forks a work horse
per job from a parent that already imported Flask, the app and WeasyPrint; then the same N
jobs each in a fresh Python process that has to import everything itself (what a worker
without preloading pays). Prints per-job medians and their ratio.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import redis
from rq import Queue

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
FRESH = ("from portal import create_app; import weasyprint, portal.tasks; app = create_app(); "
         "ctx = app.app_context(); ctx.push(); from portal.jobs import reconcile; reconcile()")


def forked(n: int) -> list[float]:
    import worker
    from portal import create_app

    app = create_app({"REDIS_URL": REDIS_URL})
    worker.preload_heavy_modules()
    worker.PortalWorker.app = app
    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    queue = Queue("default", connection=conn)
    times = []
    w = worker.PortalWorker([queue], connection=conn)
    for _ in range(n):
        queue.enqueue("portal.jobs.reconcile")
        started = time.perf_counter()
        w.work(burst=True, logging_level="ERROR")
        times.append(time.perf_counter() - started)
    conn.flushdb()
    return times


def fresh(n: int) -> list[float]:
    env = {**os.environ, "REDIS_URL": REDIS_URL}
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    a, b = statistics.median(forked(n)), statistics.median(fresh(n))
    print(f"jobs per variant: {n}")
    print(f"preloaded fork per job (median): {a * 1000:8.1f} ms")
    print(f"fresh process per job (median):  {b * 1000:8.1f} ms")
    print(f"ratio fresh / preloaded: {b / a:.1f}x")


if __name__ == "__main__":
    main()
