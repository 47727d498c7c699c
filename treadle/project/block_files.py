"""Check a block file without running it: it parses, and it has exactly one block function."""

from __future__ import annotations

import ast
from pathlib import Path

from treadle.errors import UserInputError
from treadle.project.model import HELPER_DECORATORS, BlockType

_KNOWN_DECORATORS = frozenset(t.decorator for t in BlockType) | frozenset(HELPER_DECORATORS)


def check_block_file(file: Path, display: str, block_type: BlockType) -> list[UserInputError]:
    """Problems with one block file (empty when it is fine)."""
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [UserInputError(f"cannot read block file: {exc}", path=display)]
    if display.endswith(".sql"):
        return _check_sql(source, display)
    try:
        tree = ast.parse(source, filename=display)
    except SyntaxError as exc:
        return [
            UserInputError(
                f"syntax error: {exc.msg}",
                path=display,
                line=exc.lineno,
                hint="fix the Python syntax on that line",
            )
        ]
    return _check_block_functions(tree, display, block_type)


def block_decorators(tree: ast.Module) -> list[tuple[str, ast.FunctionDef]]:
    """(decorator name, function) for every top-level function with a Treadle decorator."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            name = _decorator_name(decorator)
            if name in _KNOWN_DECORATORS:
                found.append((name, node))
    return found


def _check_block_functions(
    tree: ast.Module, display: str, block_type: BlockType
) -> list[UserInputError]:
    decorated = block_decorators(tree)
    mine = [fn for name, fn in decorated if name == block_type.decorator]
    if len(mine) == 1 and isinstance(mine[0], ast.AsyncFunctionDef):
        return [
            UserInputError(
                f"@{block_type.decorator} function {mine[0].name} is async",
                path=display,
                line=mine[0].lineno,
                hint="write it as a plain def; call async code with asyncio.run() inside it",
            )
        ]
    if len(mine) == 1:
        return []
    if not mine:
        others = sorted({name for name, _ in decorated if name not in HELPER_DECORATORS})
        found = f" (it has @{', @'.join(others)})" if others else ""
        return [
            UserInputError(
                f"no @{block_type.decorator} function{found}",
                path=display,
                line=1,
                hint=f"a {block_type.value} block file needs exactly one function "
                f"decorated with @{block_type.decorator}",
            )
        ]
    names = ", ".join(fn.name for fn in mine)
    return [
        UserInputError(
            f"{len(mine)} @{block_type.decorator} functions ({names}); a block has exactly one",
            path=display,
            line=mine[1].lineno,
            hint="move the extra function to its own block file, or drop its decorator",
        )
    ]


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _check_sql(source: str, display: str) -> list[UserInputError]:
    if not source.strip():
        return [UserInputError("empty SQL block", path=display, hint="write a query")]
    import jinja2

    try:
        jinja2.Environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [UserInputError(f"template error: {exc.message}", path=display, line=exc.lineno)]
    return []
