"""Who may use the server: users and roles, API tokens, browser sessions.

Users belong to the metadata database (several projects sharing one PostgreSQL share their
users). Passwords are kept as argon2id hashes (argon2-cffi's defaults); API tokens and
session ids are long random strings, kept as sha256 hashes (a fast hash is right for
values nobody chose, and it lets a request be checked with one indexed lookup). Neither a
token nor a session id can be read back: each is shown once, when it is made.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from treadle.errors import UserInputError, did_you_mean
from treadle.store.scheduling import hash_token
from treadle.store.sql import RunStore

TOKEN_PREFIX = "trd_"
SESSION_SECONDS = 12 * 3600.0
MIN_PASSWORD_LENGTH = 12
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")
LAST_USED_EVERY = 60.0  # seconds: how often a token's last use is written back


class Role(StrEnum):
    """What a user may do; each role may do all the roles before it may."""

    VIEWER = "viewer"  # read pipelines, runs and logs
    EDITOR = "editor"  # also edit code, run, manage triggers and backfills
    ADMIN = "admin"  # also users, secrets and settings

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = [r.value for r in Role]
        raise UserInputError(
            f"unknown role {value!r}; the roles are {', '.join(choices)}",
            hint=did_you_mean(value, choices),
        ) from None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        from treadle.store.rows import iso

        return {"name": self.name, "role": self.role.value, "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class ApiToken:
    id: int
    user: str
    name: str
    created_at: float
    last_used_at: float | None

    def to_dict(self) -> dict[str, Any]:
        from treadle.store.rows import iso

        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
        }


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: float


class AccessStore:
    """Users, API tokens and sessions, in the run store's database."""

    def __init__(self, store: RunStore) -> None:
        from argon2 import PasswordHasher

        self.db = store.db
        self._ts = store.db.ts
        self._read_ts = store.db.read_ts
        self._hasher = PasswordHasher()
        self._dummy_hash: str | None = None

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password: str, *, now: float | None = None) -> User:
        """A new user; ``UserInputError`` for a taken or invalid name or a short password."""
        check_user_name(name)
        check_password(password)
        if self.user(name) is not None:
            raise UserInputError(
                f"user {name!r} already exists",
                hint="choose another name, or change that user's role or password",
            )
        now = time.time() if now is None else now
        params = {
            "name": name,
            "role": role.value,
            "hash": self._hasher.hash(password),
            "now": self._ts(now),
        }
        self.db.execute(
            "INSERT INTO users (name, role, password_hash, created_at) "
            "VALUES (:name, :role, :hash, :now)",
            params,
        )
        user = self.user(name)
        assert user is not None
        return user

    def users(self) -> list[User]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT id, name, role, created_at FROM users ORDER BY name")
        return [self._user(row) for row in rows]

    def user(self, name: str) -> User | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT id, name, role, created_at FROM users WHERE name = :name", {"name": name}
            )
        return self._user(row) if row else None

    def count_users(self) -> int:
        with self.db.transaction(write=False) as tx:
            return int(tx.one("SELECT COUNT(*) FROM users")[0])

    def set_role(self, name: str, role: Role) -> User:
        self._existing(name)
        self.db.execute(
            "UPDATE users SET role = :role WHERE name = :name", {"role": role.value, "name": name}
        )
        return self._existing(name)

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end (tokens stay)."""
        user = self._existing(name)
        check_password(password)
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE users SET password_hash = :hash WHERE id = :id",
                {"hash": self._hasher.hash(password), "id": user.id},
            )
            tx.execute("DELETE FROM sessions WHERE user_id = :id", {"id": user.id})

    def delete_user(self, name: str) -> None:
        """Remove the user with its tokens and sessions."""
        user = self._existing(name)
        with self.db.transaction() as tx:
            for table in ("sessions", "api_tokens"):
                tx.execute(f"DELETE FROM {table} WHERE user_id = :id", {"id": user.id})
            tx.execute("DELETE FROM users WHERE id = :id", {"id": user.id})

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else ``None``. An unknown name costs a
        hash check too, so the answer's timing does not tell which names exist."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT id, name, role, created_at, password_hash FROM users WHERE name = :name",
                {"name": name},
            )
        stored = row[4] if row and row[4] else self._dummy()
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return self._user(row) if row else None

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    def _existing(self, name: str) -> User:
        user = self.user(name)
        if user is None:
            from treadle.errors import unknown_name_error

            raise unknown_name_error("user", name, [u.name for u in self.users()])
        return user

    def _user(self, row: Any) -> User:
        return User(
            id=row[0], name=row[1], role=Role(row[2]), created_at=self._read_ts(row[3]) or 0.0
        )

    # -- API tokens ------------------------------------------------------------------------

    def create_token(
        self, user_name: str, name: str = "", *, now: float | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for the user; returns it and its value, which is never shown again."""
        user = self._existing(user_name)
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time() if now is None else now
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (user_id, token_hash, created_at, name) "
                "VALUES (:user, :hash, :now, :name)",
                {"user": user.id, "hash": hash_token(value), "now": self._ts(now), "name": name},
            )
        return self._tokens("WHERE t.token_hash = :hash", {"hash": hash_token(value)})[0], value

    def tokens(self, user_name: str | None = None) -> list[ApiToken]:
        if user_name is None:
            return self._tokens("", {})
        return self._tokens("WHERE u.name = :name", {"name": user_name})

    def _tokens(self, where: str, params: dict[str, Any]) -> list[ApiToken]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT t.id, u.name, t.name, t.created_at, t.last_used_at FROM api_tokens t "
                f"JOIN users u ON u.id = t.user_id {where} ORDER BY t.id",
                params,
            )
        return [
            ApiToken(row[0], row[1], row[2], self._read_ts(row[3]) or 0.0, self._read_ts(row[4]))
            for row in rows
        ]

    def delete_token(self, token_id: int, *, user_name: str | None = None) -> bool:
        """Delete a token (only ``user_name``'s, when given); whether one was deleted."""
        params: dict[str, Any] = {"id": token_id}
        mine = ""
        if user_name is not None:
            mine = " AND user_id = (SELECT id FROM users WHERE name = :name)"
            params["name"] = user_name
        return self.db.execute(f"DELETE FROM api_tokens WHERE id = :id{mine}", params) > 0

    def user_for_token(self, value: str, *, now: float | None = None) -> User | None:
        """The user a bearer token belongs to, or ``None``; notes when it was last used."""
        if not value.startswith(TOKEN_PREFIX):
            return None
        now = time.time() if now is None else now
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT u.id, u.name, u.role, u.created_at, t.id, t.last_used_at "
                "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = :hash",
                {"hash": hash_token(value)},
            )
        if row is None:
            return None
        last_used = self._read_ts(row[5])
        if last_used is None or now - last_used > LAST_USED_EVERY:
            self.db.execute(
                "UPDATE api_tokens SET last_used_at = :now WHERE id = :id",
                {"now": self._ts(now), "id": row[4]},
            )
        return self._user(row)

    # -- sessions --------------------------------------------------------------------------

    def create_session(
        self, user: User, *, now: float | None = None, seconds: float = SESSION_SECONDS
    ) -> tuple[str, Session]:
        """A new browser session; returns the cookie's value (shown once) and the session."""
        now = time.time() if now is None else now
        value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < :now", {"now": self._ts(now)})
            tx.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) "
                "VALUES (:hash, :user, :csrf, :now, :expires)",
                {
                    "hash": hash_token(value),
                    "user": user.id,
                    "csrf": csrf,
                    "now": self._ts(now),
                    "expires": self._ts(now + seconds),
                },
            )
        return value, Session(user, csrf, now + seconds)

    def session(self, value: str, *, now: float | None = None) -> Session | None:
        """The live session a cookie's value opens, or ``None`` (unknown or expired)."""
        now = time.time() if now is None else now
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT u.id, u.name, u.role, u.created_at, s.csrf_token, s.expires_at "
                "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = :hash",
                {"hash": hash_token(value)},
            )
        if row is None:
            return None
        expires = self._read_ts(row[5]) or 0.0
        if expires <= now:
            return None
        return Session(self._user(row), row[4], expires)

    def end_session(self, value: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id_hash = :hash", {"hash": hash_token(value)})


def csrf_matches(session: Session, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (compared as bytes: a header may hold
    any byte, and ``compare_digest`` refuses text that is not ASCII)."""
    if not sent:
        return False
    return hmac.compare_digest(
        session.csrf_token.encode(), str(sent).encode("utf-8", errors="surrogateescape")
    )


def check_user_name(name: str) -> None:
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise UserInputError(
            f"{name!r} is not a valid user name",
            hint="use letters, digits and . _ - @ (up to 100), starting with a letter or digit",
        )


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserInputError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
            hint="a passphrase of a few words is long enough and easy to type",
        )


def new_password() -> str:
    """A random password for the first admin (about 128 bits)."""
    return secrets.token_urlsafe(16)
