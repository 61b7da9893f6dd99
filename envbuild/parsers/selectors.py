"""conda-build style line selectors (``# [linux and not aarch64]``) evaluated for a target arch."""

from __future__ import annotations

import ast
import re

SELECTOR = re.compile(r"#\s*\[([^\]]+)\]\s*$")


def selector_names(arch: str) -> dict[str, bool]:
    """The names a selector may use and their value for target ``arch``. Pure."""
    os_name, _, machine = arch.partition("-")
    linux, osx, win = os_name == "linux", os_name == "osx", os_name == "win"
    return {
        "linux": linux,
        "osx": osx,
        "win": win,
        "win64": arch == "win-64",
        "unix": linux or osx,
        "linux64": arch == "linux-64",
        "aarch64": arch == "linux-aarch64",
        "arm64": machine in ("arm64", "aarch64"),
        "x86_64": machine == "64",
        "x86": False,
        "osx64": arch == "osx-64",
        "osxarm64": arch == "osx-arm64",
    }


class SelectorSyntaxError(ValueError):
    """A selector that is not a boolean expression over the known names."""


def evaluate(expr: str, arch: str) -> bool:
    """Evaluate selector ``expr`` for ``arch``; raises SelectorSyntaxError when invalid."""
    names = selector_names(arch)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise SelectorSyntaxError(f"selector '[{expr}]' is not a valid expression") from exc

    def walk(node: ast.AST) -> bool:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Name):
            if node.id not in names:
                known = ", ".join(sorted(names))
                raise SelectorSyntaxError(f"selector name '{node.id}' is unknown (known: {known})")
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not walk(node.operand)
        if isinstance(node, ast.BoolOp):
            values = [walk(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        raise SelectorSyntaxError(f"selector '[{expr}]' may only use names, not, and, or")

    return walk(tree)
