"""Secrets (admin): ``/api/v1/secrets`` — the encrypted store behind ``{{ secret() }}``.

Names are listed; values go in and never come out: not in a response, not in the audit
trail, not in an error (the request validator leaves inputs out of its messages).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from treadle.project.secrets import SecretStore
from treadle.server.auth import Admin, State, audit
from treadle.server.inputs import Text
from treadle.store.rows import iso

router = APIRouter(prefix="/secrets", tags=["secrets"])


class SecretOut(BaseModel):
    name: str
    updated_at: str | None


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Text = Field(min_length=1, max_length=65536, description="stored encrypted; never shown")


@router.get("", response_model=list[SecretOut])
def list_secrets(_: Admin, state: State) -> list[SecretOut]:
    """The secrets' names and when each was last set; never their values."""
    store = SecretStore(state.root)
    return [SecretOut(name=name, updated_at=iso(store.updated_at(name))) for name in store.names()]


@router.put("/{name}", status_code=204)
def set_secret(
    name: str, body: SecretValue, request: Request, principal: Admin, state: State
) -> Response:
    """Store (or replace) a secret, encrypted."""
    store = SecretStore(state.root)
    created = name not in store.names()
    store.set(name, body.value)
    audit(request, principal, "secret.set", name, created=created)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204)
def delete_secret(name: str, request: Request, principal: Admin, state: State) -> Response:
    """Delete a secret (404 when there is none by that name)."""
    SecretStore(state.root).delete(name)
    audit(request, principal, "secret.deleted", name)
    return Response(status_code=204)
