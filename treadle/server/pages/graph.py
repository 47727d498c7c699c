"""The DAG drawn as SVG, laid out on the server: layers left to right by longest path from
the sources, blocks ordered within a layer by the mean position of their upstreams (one
barycentre pass), so edges mostly run straight. Linear time in blocks and edges; readable
at a few hundred blocks (the SVG scrolls)."""

from __future__ import annotations

from dataclasses import dataclass

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 200, 36, 60, 16, 12


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    x: int
    y: int


@dataclass(frozen=True)
class Layout:
    nodes: list[Node]
    edges: list[tuple[Node, Node]]
    width: int
    height: int


def layered_layout(upstream: dict[str, list[str]], types: dict[str, str]) -> Layout:
    """``upstream``: each block's upstream blocks, in pipeline order (an acyclic graph);
    ``types``: each block's type (its colour)."""
    layer: dict[str, int] = {}
    for name in _topological(upstream):
        layer[name] = max((layer[u] + 1 for u in upstream[name]), default=0)
    columns: dict[int, list[str]] = {}
    for name in upstream:
        columns.setdefault(layer[name], []).append(name)
    row: dict[str, float] = {}
    for depth in sorted(columns):
        names = columns[depth]
        if depth:
            names.sort(key=lambda n: _mean([row[u] for u in upstream[n]], default=0.0))
        for index, name in enumerate(names):
            row[name] = float(index)
    return _placed(upstream, types, layer, row)


def _placed(
    upstream: dict[str, list[str]],
    types: dict[str, str],
    layer: dict[str, int],
    row: dict[str, float],
) -> Layout:
    nodes = {
        name: Node(
            name,
            types.get(name, ""),
            PAD + layer[name] * (NODE_W + GAP_X),
            PAD + int(row[name]) * (NODE_H + GAP_Y),
        )
        for name in upstream
    }
    edges = [(nodes[u], nodes[name]) for name in upstream for u in upstream[name]]
    width = max((n.x for n in nodes.values()), default=0) + NODE_W + PAD
    height = max((n.y for n in nodes.values()), default=0) + NODE_H + PAD
    return Layout(list(nodes.values()), edges, width, height)


def _topological(upstream: dict[str, list[str]]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()
    for start in upstream:
        stack = [(start, iter(upstream[start]))]
        if start in seen:
            continue
        seen.add(start)
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(name)
            elif child not in seen and child in upstream:
                seen.add(child)
                stack.append((child, iter(upstream[child])))
    return order


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default
