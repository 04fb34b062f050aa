"""bench.load's placement check: a round whose connections all landed in one gunicorn process
is recognised and run again; the others are kept as they came."""
from __future__ import annotations

import argparse
import os
import subprocess

from bench import load
from bench.stack import cpu_seconds


def test_busy_processes_counts_those_with_a_quarter_of_the_busiest_ones_work():
    before = {10: 5.0, 11: 5.0, 12: 5.0, 13: 5.0, 14: 5.0}
    spread = {10: 9.0, 11: 8.5, 12: 5.01, 13: 5.02, 14: 5.0}  # two did the work
    collapsed = {10: 13.0, 11: 5.02, 12: 5.01, 13: 5.0, 14: 5.0}  # one did it all
    assert load.busy_processes(before, spread) == 2
    assert load.busy_processes(before, collapsed) == 1
    # a worker recycled during the round (max_requests) counts from zero
    recycled = {10: 9.0, 12: 5.01, 13: 5.0, 14: 5.0, 99: 3.5}
    assert load.busy_processes(before, recycled) == 2
    assert load.busy_processes(before, before) == 0


def test_cpu_seconds_reads_a_process_and_is_none_when_it_is_gone():
    assert cpu_seconds(os.getpid()) > 0
    child = subprocess.Popen(["true"])
    child.wait()
    assert cpu_seconds(child.pid) is None


class _Stack:
    def web_worker_cpu(self):
        return {pid: 0.0 for pid in range(5)}


def _sample(rps, processes):
    return load.Sample(rps=rps, p50_ms=1, p95_ms=2, p99_ms=3, errors=0, codes={},
                       processes=processes)


def test_a_collapsed_round_is_run_again_up_to_the_limit(monkeypatch):
    args = argparse.Namespace(connections=2, duration=1.0, placement_retries=3)
    page = load.Page("my-data", "/mina-uppgifter", browser=None)
    runs = iter([_sample(120, 1), _sample(118, 1), _sample(250, 2), _sample(999, 2)])
    monkeypatch.setattr(load, "wrk", lambda stack, page, seconds, args: next(runs))
    kept = load.measured_round(_Stack(), page, args)
    assert (kept.rps, kept.processes, kept.repeats) == (250, 2, 2)
    assert [r.rps for r in kept.replaced] == [120, 118]

    runs = iter([_sample(120, 1)] * 4)
    kept = load.measured_round(_Stack(), page, args)
    assert (kept.rps, kept.repeats) == (120, 3)  # still collapsed: kept, and counted

    args.placement_retries = 0
    runs = iter([_sample(120, 1)])
    assert load.measured_round(_Stack(), page, args).repeats == 0


def test_the_verdict_also_gives_the_ratio_of_every_run_as_it_came():
    collapsed = _sample(100, 1)
    kept = _sample(250, 2)
    kept.replaced = [collapsed]
    results = {"hello-world": [_sample(800, 2), _sample(800, 2), _sample(800, 2)],
               "my-data": [_sample(240, 2), kept, _sample(260, 2)],
               "dpo-queue": [_sample(300, 2)] * 3}
    lines = load.verdicts(results, 800)
    ratio = next(line for line in lines if "ratio" in line)
    # kept rounds: median 250 / 800; as they came (100, 240, 250, 260): 245 / 800
    assert "0.31 met" in ratio and "as it came, the replaced ones included: 0.31" in ratio
    results["my-data"][0] = _sample(120, 1)  # a collapse that stayed (retries exhausted)
    results["my-data"][0].replaced = [_sample(80, 1)]
    ratio = next(line for line in load.verdicts(results, 800) if "ratio" in line)
    # kept: (120, 250, 260) -> 250; as they came: (80, 100, 120, 250, 260) -> 120 / 800
    assert "0.31 met" in ratio and "included: 0.15" in ratio
