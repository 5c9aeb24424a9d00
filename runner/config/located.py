"""The YAML reader that remembers where every key and value sits.

PyYAML composes the document into nodes; `Tree` walks them itself (instead of letting PyYAML
construct the objects) so it can record positions for messages, and report duplicate keys,
which PyYAML would silently let the last one win. Strings get `${VAR}` interpolation on the
way (`runner.config.interpolation`). Problems from every stage are collected in `Problems`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from runner.config.interpolation import InterpolationError, interpolate

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans and integers (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


def _mark(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


@dataclass
class Problems:
    """Problems collected across all stages, formatted and sorted at the end."""

    source: str
    items: list[tuple[Position, int, str]] = field(default_factory=list)

    def add(self, position: Position, path: KeyPath, message: str) -> None:
        where = f"{self.source}:{position[0]}:{position[1]}"
        line = f"{where}: {dotted(path)}: {message}" if path else f"{where}: {message}"
        if all(line != existing for _, _, existing in self.items):
            self.items.append((position, len(self.items), line))

    def lines(self) -> list[str]:
        return [line for _, _, line in sorted(self.items)]


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def nearest(positions: Mapping[KeyPath, Position], path: KeyPath) -> Position:
    for end in range(len(path), -1, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return (1, 1)


# Values one config may expand to. A real one has hundreds; aliases of aliases of aliases ("billion
# laughs") reach billions from a few lines, and each would be built and remembered.
MAX_VALUES = 100_000


class _TooBig(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class Tree:
    """Builds plain Python data from composed YAML nodes, remembering positions.

    Attributes:
        values: key path -> position of the value (of the key, when the value is left empty).
        keys: key path -> position of the key itself.
        broken: paths whose value already has a problem; later stages stay quiet about them.
    """

    def __init__(self, loader: _Loader, env: Mapping[str, str], problems: Problems) -> None:
        self.loader = loader
        self.env = env
        self.problems = problems
        self.values: dict[KeyPath, Position] = {}
        self.keys: dict[KeyPath, Position] = {}
        self.broken: set[KeyPath] = set()
        self.built = 0

    def build(self, node: yaml.Node, path: KeyPath, stack: frozenset[int] = frozenset()) -> Any:
        self.built += 1
        if self.built > MAX_VALUES:
            raise _TooBig(node)
        if id(node) in stack:
            self._error(node, path, "an alias refers to itself")
            return None
        stack = stack | {id(node)}
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL_TAG and node.value == "" and path in self.keys:
                self.values[path] = self.keys[path]  # `key:` with nothing after it
            else:
                self.values[path] = _mark(node.start_mark)
            return self._scalar(node, path)
        self.values[path] = _mark(node.start_mark)
        if node.tag not in (_SEQ_TAG, _MAP_TAG):
            # A safe loader would refuse these anyway; say so rather than ignore the tag.
            self._error(node, path, f"unsupported YAML tag '{node.tag}'")
            return None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), stack) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, stack, skip=frozenset())
        self._error(node, path, "unsupported YAML node")
        return None

    def _error(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        self.problems.add(_mark(node.start_mark), path, message)
        self.broken.add(path)

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._error(node, path, f"cannot read value: {exc.problem}")
            return None
        if isinstance(value, str):
            try:
                return interpolate(value, self.env)
            except InterpolationError as exc:
                self._error(node, path, str(exc))
                return ""
        return value

    def _mapping(
        self, node: yaml.MappingNode, path: KeyPath, stack: frozenset[int], skip: frozenset[str]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.add(_mark(key_node.start_mark), path, "keys must be plain names")
                continue
            key = str(key_node.value)
            if key in first_line:
                self.problems.add(
                    _mark(key_node.start_mark),
                    (*path, key),
                    f"duplicate key '{key}' (first at line {first_line[key]})",
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            if key in skip:  # overridden by the mapping that merges this one
                continue
            self.keys[(*path, key)] = _mark(key_node.start_mark)
            result[key] = self.build(value_node, (*path, key), stack)
        # `<<: *defaults` fills in what the mapping does not say itself; earlier merges win.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.problems.add(_mark(source.start_mark), path, "'<<' merges only mappings")
                    continue
                taken = skip | set(result)
                result.update(self._mapping(source, path, stack | {id(source)}, taken))
        return result


def parse(text: str, env: Mapping[str, str], problems: Problems) -> tuple[Any, Tree]:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # raised at once for a control character
        before = text[: exc.position]
        position = (before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        problems.add(
            position, (), f"YAML syntax error: unacceptable character #x{exc.character:04x}"
        )
        return None, Tree(_Loader(""), env, problems)
    tree = Tree(loader, env, problems)
    tree.values[()] = (1, 1)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}, tree
        return tree.build(root, ()), tree
    except _TooBig as exc:
        problems.add(
            _mark(exc.node.start_mark),
            (),
            f"the YAML expands to more than {MAX_VALUES} values (aliases of aliases?): "
            "write the repeated parts out, or nest aliases less",
        )
        return None, tree
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = _mark(mark) if mark is not None else (1, 1)
        message = exc.problem or "invalid YAML"
        if exc.context:
            message += f" ({exc.context})"
        if exc.context == "while scanning an alias" and exc.context_mark is not None:
            # Nearly always an unquoted cron expression: point at its start, not at the '/'.
            position = _mark(exc.context_mark)
            message += "; quote values that start with '*', like cron: \"*/15 * * * *\""
        problems.add(position, (), f"YAML syntax error: {message}")
        return None, tree
    finally:
        loader.dispose()
