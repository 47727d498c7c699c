"""Schemathesis against the OpenAPI document: generated requests, as an admin, must never
get a server error, and every answer must match the schema the document gives for it.

Bounded: ``TREADLE_SCHEMATHESIS_EXAMPLES`` examples per operation (default 25), so the
suite stays fast; raise it locally to search harder. Each operation is driven through
Hypothesis directly (``APIOperation.as_strategy``) rather than schemathesis's pytest
plugin, which does not work with this pytest.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from treadle.store.access import Role

EXAMPLES = int(os.environ.get("TREADLE_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
#: Streams that only end with their run: a generated request would wait for it.
SKIPPED = {("GET", "/api/v1/runs/{run_id}/logs/stream")}


def test_the_api_conforms_to_its_openapi_document(server) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", server.app)
    headers = {"Authorization": f"Bearer {server.tokens[Role.ADMIN]}"}
    failures: dict[str, str] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        tested += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            conforms()
        except Exception as exc:  # every operation is tried; all failures are reported
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
    assert tested >= 5
    assert not failures, "\n\n".join(f"{op}:\n{why}" for op, why in failures.items())
