"""Read YAML and remember the line of every key, so errors can point at it."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from treadle.errors import UserInputError

try:  # the C loader is several times faster; fall back when libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

KeyPath = tuple[str | int, ...]


class YamlDocument:
    """A parsed YAML document plus ``line_of(path)`` for any key or item in it."""

    def __init__(self, data: Any, lines: dict[KeyPath, int], path: str) -> None:
        self.data = data
        self.path = path
        self._lines = lines

    def line_of(self, *key_path: str | int) -> int | None:
        """Line (1-based) of the deepest part of ``key_path`` that exists."""
        for end in range(len(key_path), -1, -1):
            line = self._lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None

    def error(self, message: str, *key_path: str | int, hint: str | None = None) -> UserInputError:
        return UserInputError(message, path=self.path, line=self.line_of(*key_path), hint=hint)


def parse_yaml(text: str, path: str) -> YamlDocument:
    """Parse ``text``; a malformed document raises ``UserInputError`` with its line."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserInputError(
            f"malformed YAML: {problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            hint="check the indentation and quoting on that line",
        ) from None
    lines: dict[KeyPath, int] = {}
    try:
        data = _Converter(lines).convert(node, ()) if node is not None else None
    except _ValueProblem as problem:
        raise UserInputError(
            f"cannot read {problem.text!r}: {problem.reason}",
            path=path,
            line=problem.line,
            hint=problem.hint,
        ) from None
    return YamlDocument(data, lines, path)


def read_yaml(file: Path, display_path: str) -> YamlDocument:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError("file not found", path=display_path) from None
    except OSError as exc:
        raise UserInputError(f"cannot read it: {exc.strerror}", path=display_path) from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"not UTF-8 text ({exc.reason})", path=display_path) from None
    return parse_yaml(text, display_path)


class _ValueProblem(Exception):
    def __init__(self, node: yaml.Node, reason: str, hint: str = "") -> None:
        self.text = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
        self.line = node.start_mark.line + 1
        self.reason = reason
        self.hint = hint or "quote it to keep it as text"


class _Converter:
    """Turns a composed node tree into Python values, recording each key's line."""

    def __init__(self, lines: dict[KeyPath, int]) -> None:
        self.lines = lines
        self.constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, key_path: KeyPath) -> Any:
        self.lines[key_path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._construct(key_node)
                if not isinstance(key, Hashable):
                    raise _ValueProblem(
                        key_node,
                        "a mapping cannot be a key (an unquoted {{ … }} reads as one)",
                        'quote the value: title: "{{ pipeline }} failed"',
                    )
                if key in result:
                    raise _ValueProblem(
                        key_node, "the key appears twice in one mapping", "keep one of them"
                    )
                child_path = (*key_path, key)
                result[key] = self.convert(value_node, child_path)
                self.lines[child_path] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*key_path, i)) for i, item in enumerate(node.value)]
        return self._construct(node)

    def _construct(self, node: yaml.Node) -> Any:
        """A scalar's value; an invalid date or an unsafe tag is a ``_ValueProblem``."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            raise _ValueProblem(node, reason) from None
