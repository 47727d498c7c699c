"""Turn ``InputRef``s into values: from memory when the runner shares it, else the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from treadle.engine.outputs import OutputStore
from treadle.engine.tasks import InputRef


class InputResolver:
    def __init__(
        self, outputs_root: Path, memory: Mapping[tuple[str, str], Any] | None = None
    ) -> None:
        self.outputs_root = outputs_root
        self.memory = memory if memory is not None else {}
        self._stores: dict[str, OutputStore] = {}

    def resolve(self, refs: Sequence[InputRef]) -> list[Any]:
        return [self._resolve_one(ref) for ref in refs]

    def _resolve_one(self, ref: InputRef) -> Any:
        values = [self._value(ref.run_id, key) for key in ref.keys]
        if ref.collect:
            return values
        value = values[0]
        return value if ref.item is None else value[ref.item]

    def _value(self, run_id: str, key: str) -> Any:
        try:
            return self.memory[(run_id, key)]
        except KeyError:
            return self.store(run_id).load(key)

    def store(self, run_id: str) -> OutputStore:
        store = self._stores.get(run_id)
        if store is None:
            store = self._stores[run_id] = OutputStore(self.outputs_root, run_id)
        return store
