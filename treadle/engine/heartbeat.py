"""A thread beside a running run: heartbeats, and cancel requests from elsewhere.

Every ``every`` seconds it emits ``RunHeartbeat`` (run history marks the run alive);
every ``poll`` seconds it asks the ``CancelSource`` whether someone asked to cancel the
run (``treadle cancel``, the server). On a request it tells the runner, which stops
dispatching and kills running worker processes; a block running inline on the runner's
own thread finishes first (``treadle cancel`` also sends SIGINT to a run's process on the
same machine, which stops that too).
"""

from __future__ import annotations

import logging
import threading
import time

from treadle.engine.runner import Runner
from treadle.engine.sink import CancelSource, EventSink
from treadle.events import RunHeartbeat

CANCEL_POLL = 1.0
log = logging.getLogger("treadle.engine")


class Heartbeat:
    def __init__(
        self,
        runner: Runner,
        sink: EventSink,
        cancel_source: CancelSource | None,
        *,
        every: float,
        poll: float = CANCEL_POLL,
    ) -> None:
        self.runner = runner
        self.sink = sink
        self.cancel_source = cancel_source
        self.every = every
        self.poll = min(poll, every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="treadle-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        run_id = self.runner.run.run_id
        next_beat = time.monotonic() + self.every
        while not self._stop.wait(self.poll):
            try:
                if self.cancel_source is not None and self.runner.cancel_reason is None:
                    reason = self.cancel_source.cancel_requested(run_id)
                    if reason:
                        self.runner.request_cancel(reason)
                if time.monotonic() >= next_beat:
                    self.sink.emit(RunHeartbeat(run_id, time.time()))
                    next_beat = time.monotonic() + self.every
            except Exception as exc:  # a database that is briefly away must not stop the beat
                log.warning("heartbeat of run %s: %s", run_id, exc)
