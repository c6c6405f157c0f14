"""Webhook items go through the pipeline on one worker thread, in batches.

A platform that sends many events at once (a busy comment thread, a burst of Teams messages)
delivers them as many concurrent webhook requests. Each request hands its items to the
:class:`IngestWorker` and waits; while the worker is busy with one batch, the items of the
requests that arrive meanwhile gather into the next. The model-backed rules (sentence embeddings,
toxicity) then run once per batch instead of once per request, which is what keeps a busy
service's latency flat (bench/RESULTS-load.md). A request still gets its answer only after its
items are archived and checked, so an item is never acknowledged and then lost.

The worker also keeps the pipeline off the HTTP server's event loop, so a slow batch never delays
another endpoint (Slack's three-second acknowledgement above all).

Given ``start`` (the service passes the pipeline's two halves, :meth:`Pipeline.begin` and the
finishing step it returns), the worker overlaps batches when requests keep coming: it archives the
next batch and starts its models before it records the current one and sends its alerts, so on a
two-core machine the models of one batch run while the other batch's Python work is done. When
nothing is waiting, a batch is finished at once, so an idle service answers as fast as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from governance_bot.items import Item
from governance_bot.pipeline import ScanReport

__all__ = ["IngestWorker"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    items: Sequence[Item]
    future: Future[ScanReport] = field(default_factory=Future)


class IngestWorker:
    """Runs ``process(items) -> ScanReport`` for submitted items on one thread, batching what
    queues up (at most ``max_batch`` items per call, whole submissions only), then calls
    ``after_batch`` before answering (the service drains the outbox there, so alerts go out at
    once and a request is answered once its alerts are on their way)."""

    def __init__(self, process: Callable[[list[Item]], ScanReport] | None = None,
                 after_batch: Callable[[ScanReport], None] | None = None,
                 max_batch: int = 64,
                 start: Callable[[list[Item]], Callable[[], ScanReport]] | None = None) -> None:
        if (process is None) == (start is None):
            raise ValueError("give the worker either process or start")
        if start is None:
            assert process is not None
            start = lambda items: lambda: process(items)  # noqa: E731
        self._start = start
        self._after_batch = after_batch
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self._carried: _Job | None = None  # taken from the queue, waits for the next batch
        self.batches = 0  # how many pipeline calls so far (for tests and metrics)

    def submit(self, items: Sequence[Item]) -> Future[ScanReport]:
        """Queue ``items``; the future holds the report for these items alone."""
        job = _Job(items)
        if self._stopped:
            job.future.set_exception(RuntimeError("the ingest worker has stopped"))
            return job.future
        self._ensure_started()
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 60.0) -> None:
        """Finish what is queued, then stop the thread."""
        self._stopped = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
                self._thread.start()

    def _next_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` plus the submissions queued behind it, up to ``max_batch`` items (a
        submission that would pass the limit waits for the next batch; one is never split)."""
        jobs, count = [first], len(first.items)
        while count < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if count + len(job.items) > self.max_batch:
                self._carried = job
                break
            jobs.append(job)
            count += len(job.items)
        return jobs, False

    def _run(self) -> None:
        pending: tuple[list[_Job], Callable[[], ScanReport]] | None = None
        stopping = False
        while True:
            first, self._carried = self._carried, None
            if first is None and not stopping:
                try:  # wait for work only when nothing is in progress
                    first = self._queue.get(block=pending is None)
                except queue.Empty:
                    first = None
                else:
                    stopping = first is None
            started = None
            if first is not None:
                jobs, stop = self._next_batch(first)
                stopping = stopping or stop
                started = self._begin(jobs)
            if pending is not None:
                self._finish(*pending)
            pending = started
            if pending is None and self._carried is None and stopping:
                return

    def _begin(self, jobs: list[_Job]) -> tuple[list[_Job], Callable[[], ScanReport]] | None:
        items = [item for job in jobs for item in job.items]
        try:
            return jobs, self._start(items)
        except Exception as exc:  # the pipeline catches per item; this is a last resort
            log.exception("a webhook batch of %d item(s) failed", len(items))
            for job in jobs:
                job.future.set_exception(exc)
            return None

    def _finish(self, jobs: list[_Job], finish: Callable[[], ScanReport]) -> None:
        try:
            report = finish()
        except Exception as exc:  # the pipeline catches per item; this is a last resort
            log.exception("a webhook batch of %d item(s) failed",
                          sum(len(job.items) for job in jobs))
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.batches += 1
        if self._after_batch is not None:  # before answering, as the service always has
            try:
                self._after_batch(report)
            except Exception:
                log.exception("after a webhook batch: delivery failed; the outbox retries")
        failed = set(report.failed_items)
        for job in jobs:
            mine = ScanReport(items=len(job.items))
            mine.failed_items = [i.key for i in job.items if i.key in failed]
            mine.problems = [p for p in report.problems
                             if any(p.startswith(f"item {key}:") for key in mine.failed_items)]
            if mine.failed and not mine.problems:
                mine.problems = [f"item {key}: not processed" for key in mine.failed_items]
            job.future.set_result(mine)
