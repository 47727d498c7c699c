"""Starting runs with their history recorded: now, on a schedule, by API, as a backfill.

``launch`` starts, resumes, retries and cancels runs (what the CLI and the server call);
``retention`` keeps the disk from filling up. Triggers and backfills come later.
"""
