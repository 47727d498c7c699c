"""ASGI middleware: a cap on request bodies, and the security headers of every response."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException

Scope = dict[str, Any]


class BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI renders it as 413 like any HTTPException."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, detail=f"the request body is over {max_bytes} bytes")


class BodyLimit:
    """Refuse a body over ``max_bytes`` with 413, whether it says its length or not."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Any, max_bytes: int) -> None:
    body = json.dumps(
        {
            "error": "BodyTooLarge",
            "message": f"the request body is over {max_bytes} bytes",
            "detail": f"the request body is over {max_bytes} bytes",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
#: Scripts only from this server's own files (no inline script, no eval): an injected
#: ``<script>`` or ``onclick`` does not run. Inline styles stay allowed (htmx and CodeMirror
#: set them).
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` and the content security policy to every response; not the
    policy to ``no_policy_paths`` (FastAPI's interactive API docs use an inline script)."""

    def __init__(self, app: Any, no_policy_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.no_policy_paths = no_policy_paths

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(SECURITY_HEADERS)
        if scope["path"] not in self.no_policy_paths:
            headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY))

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)
