"""One scheduler per process for the periodic work of every tenant it serves (issue 13.2).

A hub's tenants each have reminders, housekeeping, the admin-notice retry and the waitlist to run
now and then. Instead of a sleeping loop per worker per tenant, each is a `Job` here: a step that
returns when it wants to run next (seconds, or None: only when woken), in one heap driven by one
task. At most `concurrency` steps run at once, so the tenants' periodic passes never open more
than that many PostgreSQL connections together (a hub's 200 tenants' notice retries would
otherwise all connect in the same second). A job runs one step at a time; a wake that comes while
it runs makes it run again right after, so no wake is lost. A failed step is logged and the job
retries after its `retry` delay.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float | None]]


class Job:
    def __init__(self, name: str, step: Step, retry: float) -> None:
        self.name = name
        self.step = step
        self.retry = retry
        self.due: float | None = None  # loop time of its next run; None: only when woken
        self.running = False
        self.again = False  # woken while running: run again at once
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None


class Scheduler:
    def __init__(self, *, concurrency: int = 16) -> None:
        self.concurrency = concurrency
        self.jobs: set[Job] = set()
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    def add(self, name: str, step: Step, *, delay: float | None = 0.0, retry: float = 30.0) -> Job:
        """A job whose first run is in `delay` seconds (None: when first woken)."""
        job = Job(name, step, retry)
        self.jobs.add(job)
        if delay is not None:
            self._at(job, delay)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="scheduler")
        return job

    def wake(self, job: Job) -> None:
        """Run `job` now (after its current run, when it is running)."""
        if job.cancelled:
            return
        if job.running:
            job.again = True
        else:
            self._at(job, 0.0)

    async def cancel(self, *jobs: Job) -> None:
        """Jobs removed; a step under way is cancelled and awaited."""
        running = []
        for job in jobs:
            job.cancelled = True
            job.due = None
            self.jobs.discard(job)
            if job.task is not None:
                job.task.cancel()
                running.append(job.task)
        await asyncio.gather(*running, return_exceptions=True)
        self._changed.set()  # the loop ends when no job is left

    def _at(self, job: Job, delay: float) -> None:
        due = asyncio.get_running_loop().time() + max(delay, 0.0)
        if job.due is not None and job.due <= due:
            return  # already due sooner
        job.due = due
        heapq.heappush(self._heap, (due, next(self._order), job))
        self._changed.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.jobs:
            self._changed.clear()
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, job = heapq.heappop(self._heap)
                if job.cancelled or job.due != due:
                    continue  # rescheduled or removed since
                job.due = None
                job.running = True
                job.task = asyncio.create_task(self._step(job), name=job.name)
            timeout = self._heap[0][0] - now if self._heap else None
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def _step(self, job: Job) -> None:
        delay: float | None
        try:
            async with self._slots:
                try:
                    delay = await job.step()
                except Exception:
                    log.exception("%s failed", job.name)
                    delay = job.retry
        finally:
            job.running = False
            job.task = None
        if job.cancelled:
            return
        if job.again:
            job.again = False
            delay = 0.0
        if delay is not None:
            self._at(job, delay)


class WakingEvent(asyncio.Event):
    """An asyncio.Event whose `set()` also wakes a scheduler's job (a worker's "something
    changed" event, now that no loop of its own waits on it)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()
