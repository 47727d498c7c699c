"""``/api/v1/users`` (admin) and ``/api/v1/tokens`` (each user their own; admins all)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from treadle.server.auth import Admin, State, Viewer, audit
from treadle.server.inputs import MAX_ID
from treadle.store.access import Role

router = APIRouter(tags=["users"])


class UserOut(BaseModel):
    name: str
    role: Role
    created_at: str | None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    role: Role = Role.VIEWER
    password: str = Field(max_length=1000, description="at least 12 characters")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: str | None = Field(default=None, max_length=1000)


class TokenOut(BaseModel):
    id: int
    user: str
    name: str
    created_at: str | None
    last_used_at: str | None


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, description="what the token is for")
    user: str | None = Field(
        default=None, max_length=100, description="admins may create one for another user"
    )


class TokenCreated(TokenOut):
    token: str = Field(description="shown this once; only its hash is kept")


@router.get("/users", response_model=list[UserOut])
def list_users(_: Admin, state: State) -> list[UserOut]:
    return [UserOut(**u.to_dict()) for u in state.access.users()]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: NewUser, request: Request, principal: Admin, state: State) -> UserOut:
    user = state.access.add_user(body.name, body.role, body.password)
    audit(request, principal, "user.added", user.name, role=user.role.value)
    return UserOut(**user.to_dict())


@router.patch("/users/{name}", response_model=UserOut)
def change_user(
    name: str, body: UserChange, request: Request, principal: Admin, state: State
) -> UserOut:
    if body.password is not None:
        state.access.set_password(name, body.password)
        audit(request, principal, "user.password_changed", name)
    if body.role is not None:
        _keep_an_admin(state, name, body.role)
        state.access.set_role(name, body.role)
        audit(request, principal, "user.role_changed", name, role=body.role.value)
    user = state.access.user(name)
    if user is None:
        raise HTTPException(404, detail=f"no user {name!r}")
    return UserOut(**user.to_dict())


@router.delete("/users/{name}", status_code=204)
def delete_user(name: str, request: Request, principal: Admin, state: State) -> None:
    _keep_an_admin(state, name, None)
    state.access.delete_user(name)
    audit(request, principal, "user.deleted", name)


def _keep_an_admin(state: State, name: str, new_role: Role | None) -> None:
    """Refuse to remove or demote the last admin: nobody could manage users after."""
    admins = [u.name for u in state.access.users() if u.role is Role.ADMIN]
    if admins == [name] and new_role is not Role.ADMIN:
        raise HTTPException(409, detail=f"{name} is the only admin; make another admin first")


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: Viewer, state: State) -> list[TokenOut]:
    """The caller's tokens; an admin sees everyone's."""
    mine = None if principal.role is Role.ADMIN else principal.name
    return [TokenOut(**t.to_dict()) for t in state.access.tokens(mine)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: NewToken, request: Request, principal: Viewer, state: State) -> TokenCreated:
    """A new API token for the caller (an admin: for any user); its value is shown once."""
    owner = body.user or principal.name
    if owner != principal.name and principal.role is not Role.ADMIN:
        raise HTTPException(403, detail="only an admin may create tokens for another user")
    if principal.via == "open" and body.user is None:
        raise HTTPException(422, detail="auth is off: name the user the token is for")
    token, value = state.access.create_token(owner, body.name)
    audit(request, principal, "token.created", owner, token_id=token.id, name=body.name)
    return TokenCreated(**token.to_dict(), token=value)


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    principal: Viewer,
    state: State,
) -> None:
    """Revoke a token (one's own; an admin: anyone's)."""
    mine = None if principal.role is Role.ADMIN else principal.name
    if not state.access.delete_token(token_id, user_name=mine):
        raise HTTPException(404, detail=f"no token {token_id}")
    audit(request, principal, "token.deleted", str(token_id))
