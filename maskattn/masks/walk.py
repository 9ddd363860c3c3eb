"""Iterative traversal of mask expressions.

A composition such as ``functools.reduce(operator.or_, [sliding_window(i) for i in
range(1000)])`` is a tree 1000 levels deep; recursive evaluation (one Python frame per
level) would hit the interpreter's recursion limit. ``fold`` evaluates a tree bottom-up with
an explicit stack instead.
"""
from __future__ import annotations

from typing import Callable, Sequence


def fold(root, expand: Callable[[object], Sequence | None], leaf: Callable, combine: Callable):
    """Post-order fold without recursion.

    ``expand(node)`` returns the node's operands in the order they should be evaluated, or
    None for a node evaluated as a whole by ``leaf(node)``. ``combine(node, values)`` gets
    the operands' values in that same order. Evaluating the deepest operand first keeps few
    values alive at once (two along a chain)."""
    values: list = []
    stack: list = [(root, None)]
    while stack:
        node, operands = stack.pop()
        if operands is None:
            operands = expand(node)
            if operands is None:
                values.append(leaf(node))
                continue
            stack.append((node, operands))
            stack.extend((op, None) for op in reversed(operands))
        else:
            n = len(operands)
            args = values[len(values) - n:]
            del values[len(values) - n:]
            values.append(combine(node, args))
    return values[0]


def walk(root, children: Callable[[object], Sequence]):
    """Every node of the tree under ``root`` (pre-order, iteratively)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(tuple(children(node))))
