"""Durations as users write them: ``90``, ``5s``, ``10m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ``ValueError`` with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    text = str(value).strip().replace(" ", "")
    if not text or _PART.sub("", text):
        raise ValueError(f"{value!r} is not a duration (write e.g. 30s, 10m, 1h30m or 2d)")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
