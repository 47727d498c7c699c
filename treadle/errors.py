"""One error tree for all of Treadle.

``TreadleError`` is the root. Its branches:

* ``UserInputError`` — something the user wrote is wrong (a project file, an argument).
  It carries where (``path``, ``line``) and what to do (``hint``). ``ProjectInvalid``
  gathers many of them so a validation pass can report every problem at once.
* ``BlockTimeout`` (raised inside a block past its timeout) and ``RunFailed`` (raised
  by ``RunResult.raise_for_status``).

A block's own failure is not raised at all: the engine's single error boundary
  (``treadle/engine/block_call.py``) turns whatever the user's code raised into an
  ``ErrorInfo`` (type, message, traceback cut to the user's own frames) on the block's
  result, so "your code failed" reads differently from "Treadle failed".

Anything else that escapes is a bug in Treadle. Errors are rendered only at the edges
(``treadle/cli.py``, later the server); nothing here formats for a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass


class TreadleError(Exception):
    """Root of every error Treadle raises on purpose."""


class UserInputError(TreadleError):
    """Bad input from the user: a file, a setting or an argument."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint

    @property
    def location(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path or ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text} ({self.hint})" if self.hint else text


class ProjectInvalid(UserInputError):
    """A project has one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[UserInputError], *, path: str | None = None) -> None:
        count = len(problems)
        super().__init__(f"the project has {count} problem{'s' if count != 1 else ''}", path=path)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join([self.message + ":"] + [f"  {p}" for p in self.problems])


class UnknownName(UserInputError):
    """A name (pipeline, block, executor, profile …) that does not exist."""


class PathRefused(UserInputError):
    """A path that leaves the project, or reaches a part of it that is not served."""


class MissingExtra(UserInputError):
    """An optional dependency is not installed; the hint names the ``pip install``."""


@dataclass(frozen=True)
class ErrorInfo:
    """A block failure as plain data: crosses processes and goes into events."""

    type: str
    message: str
    traceback: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> ErrorInfo:
        return cls(data["type"], data["message"], data["traceback"])

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class BlockTimeout(TreadleError):
    """Raised inside a block that ran past its ``timeout``."""


class QueryFailed(TreadleError):
    """A SQL block's query failed in its database (the message holds the SQL as run)."""


class RunFailed(TreadleError):
    """A pipeline run finished without success (raised only when the caller asks)."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A hint naming the closest of ``choices``, or listing them all when none is close."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if choices:
        return "valid names: " + ", ".join(sorted(map(str, choices)))
    return "none are defined yet"


def unknown_name_error(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> UnknownName:
    return UnknownName(f"unknown {kind} {name!r}", hint=did_you_mean(name, choices))
