"""Spotify's `fields=` filter: `a,b.c,items(added_at,track(name,album(!name,href)))`.

A `!` before the first field of a parenthesised list excludes the whole list, as in the
spec's own example: `items.track.album(!external_urls,images)` is the album without its
`external_urls` and `images`.
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, "Tree | None"]


class FieldsError(ValueError):
    """The `fields` expression does not parse."""


def parse_fields(text: str) -> Tree:
    """Parse a fields expression into a tree of wanted keys (None: the whole value)."""
    tree, pos = _parse_list(text.replace(" ", ""), 0)
    if pos != len(text.replace(" ", "")):
        raise FieldsError("unbalanced parentheses")
    return tree


def _parse_list(s: str, pos: int) -> tuple[Tree, int]:
    tree: Tree = {}
    negated = pos < len(s) and s[pos] == "!"
    while pos < len(s) and s[pos] != ")":
        pos = _parse_path(s, pos, tree)
        if pos < len(s) and s[pos] == ",":
            pos += 1
    if negated:
        return {"!" + name.lstrip("!"): sub for name, sub in tree.items()}, pos
    return tree, pos


def _parse_path(s: str, pos: int, tree: Tree) -> int:
    start = pos
    while pos < len(s) and s[pos] not in ",().":
        pos += 1
    name = s[start:pos]
    if not name:
        raise FieldsError("empty field name")
    if pos < len(s) and s[pos] == ".":
        sub = tree.get(name) or {}
        pos = _parse_path(s, pos + 1, sub)
        tree[name] = sub
        return pos
    if pos < len(s) and s[pos] == "(":
        sub, pos = _parse_list(s, pos + 1)
        if pos >= len(s) or s[pos] != ")":
            raise FieldsError("unbalanced parentheses")
        merged = tree.get(name) or {}
        merged.update(sub)
        tree[name] = merged
        return pos + 1
    tree[name] = None
    return pos


def apply_fields(value: Any, tree: Tree | None) -> Any:
    """Keep only what `tree` asks for; lists are filtered element by element."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    excluded = {k[1:] for k in tree if k.startswith("!")}
    included = {k: v for k, v in tree.items() if not k.startswith("!")}
    if excluded and not included:
        return {k: v for k, v in value.items() if k not in excluded}
    return {k: apply_fields(value[k], sub) for k, sub in included.items() if k in value}
