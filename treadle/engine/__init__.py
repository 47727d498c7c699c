"""Running one pipeline run: planning, executors, retries, timeouts, the output store.

The entry point is ``treadle.engine.api.run_pipeline``; the engine reports what happens
through events (``treadle/events.py``) into an ``EventSink`` (``engine/sink.py``).
"""
