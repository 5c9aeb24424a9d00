"""Spotify's OpenAPI description, as the fake's tests read it: operations, scopes, schemas.

CI has `../shared` beside the checkout, so there a missing description is an error; elsewhere
the tests that need it are skipped with the path they looked at.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

SPEC = (Path(__file__).resolve().parents[2] / ".." / "shared" / "spotify-web-api").resolve()
SPEC_FILE = SPEC / "openapi.yml"
METHODS = ("get", "put", "post", "delete")


@dataclass(frozen=True)
class Operation:
    """One operation of the description."""

    method: str  # upper case
    path: str  # template, relative to /v1
    deprecated: bool
    scopes: frozenset[str]
    responses: dict[str, Any]
    parameters: tuple[dict[str, Any], ...] = ()  # with their $refs resolved

    @property
    def name(self) -> str:
        """`GET /albums/{id}`."""
        return f"{self.method} {self.path}"


@cache
def spec() -> dict[str, Any] | None:
    """The parsed description, or None when it is not there."""
    if not SPEC_FILE.exists():
        return None
    with SPEC_FILE.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def require_spec() -> dict[str, Any]:
    """The description; skips the test without it, except in CI, where it fails."""
    loaded = spec()
    if loaded is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the Spotify OpenAPI description at {SPEC_FILE}")
        pytest.skip(f"the Spotify OpenAPI description is not at {SPEC_FILE}")
    return loaded


def operations() -> list[Operation]:
    """Every operation, in the description's order (empty without the description)."""
    loaded = spec()
    if loaded is None:
        return []
    found = []
    for path, item in loaded["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            scopes = frozenset(s for req in op.get("security", []) for v in req.values() for s in v)
            params = tuple(
                loaded["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                if "$ref" in p
                else p
                for p in op.get("parameters", [])
            )
            found.append(
                Operation(
                    method.upper(),
                    path,
                    bool(op.get("deprecated")),
                    scopes,
                    op.get("responses", {}),
                    params,
                )
            )
    return found


def current() -> list[Operation]:
    """The operations not marked deprecated."""
    return [op for op in operations() if not op.deprecated]


def _deprecated_names(node: dict[str, Any]) -> set[str]:
    """Deprecated properties of a schema and of the inline parts it is made of (allOf)."""
    props = node.get("properties", {})
    names = {k for k, v in props.items() if isinstance(v, dict) and v.get("deprecated")}
    for part in node.get("allOf", []):
        if isinstance(part, dict) and "$ref" not in part:
            names |= _deprecated_names(part)
    return names


def _drop_deprecated(node: Any, gone: frozenset[str] = frozenset()) -> Any:
    """The schema without its deprecated properties ("deprecated fields aside"): they are
    neither required nor checked."""
    if isinstance(node, list):
        return [_drop_deprecated(n) for n in node]
    if not isinstance(node, dict):
        return node
    here = gone | _deprecated_names(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "allOf":
            out[key] = [_drop_deprecated(part, here) for part in value]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {
                k: _nullable_if_said(_drop_deprecated(v)) for k, v in value.items() if k not in here
            }
        elif key == "required" and isinstance(value, list):
            out[key] = [r for r in value if r not in here]
        else:
            out[key] = _drop_deprecated(value)
    return out


def _nullable_if_said(prop: Any) -> Any:
    """A property whose own description says it may be `null` ("`null` if none", "Can be
    `null`") is nullable, though the description's schema forgets to say so."""
    if not isinstance(prop, dict) or "`null`" not in str(prop.get("description", "")):
        return prop
    if "type" in prop:
        return {**prop, "nullable": True}
    # `nullable` needs a `type` beside it; a oneOf/allOf property gets null as an alternative.
    return {"anyOf": [prop, {"enum": [None]}], "description": prop.get("description")}


def _type_of(schemas: dict[str, Any], name: str) -> str | None:
    """The `type` enum value a component schema fixes (through its allOf parts)."""
    node = schemas[name]
    parts = [node, *node.get("allOf", [])]
    for part in parts:
        if "$ref" in part:
            found = _type_of(schemas, part["$ref"].rsplit("/", 1)[1])
            if found:
                return found
        enum = part.get("properties", {}).get("type", {}).get("enum")
        if enum:
            return str(enum[0])
    return None


def _map_discriminators(node: Any, schemas: dict[str, Any]) -> None:
    """Spell out each discriminator's mapping: the description leaves it implicit, and the
    implicit one names schemas by the `type` value ("track"), which do not exist."""
    if isinstance(node, list):
        for n in node:
            _map_discriminators(n, schemas)
        return
    if not isinstance(node, dict):
        return
    disc = node.get("discriminator")
    if isinstance(disc, dict) and "mapping" not in disc and "oneOf" in node:
        mapping = {}
        for option in node["oneOf"]:
            name = option["$ref"].rsplit("/", 1)[1]
            value = _type_of(schemas, name)
            assert value is not None, f"{name} has no fixed type"
            mapping[value] = option["$ref"]
        disc["mapping"] = mapping
    for value in node.values():
        _map_discriminators(value, schemas)


@cache
def _components() -> dict[str, Any]:
    loaded = require_spec()
    components: dict[str, Any] = _drop_deprecated(copy.deepcopy(loaded["components"]))
    _map_discriminators(components, components["schemas"])
    return components


def response_schema(op: Operation, status: int) -> dict[str, Any] | None:
    """The JSON schema of the answer `status` to `op`, None when it has no JSON body.

    Raises:
        KeyError: the description lists no such status for the operation.
    """
    response = op.responses[str(status)]
    if "$ref" in response:
        response = _components()["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content", {}).get("application/json")
    if content is None:
        return None
    schema: dict[str, Any] = _drop_deprecated(copy.deepcopy(content["schema"]))
    _map_discriminators(schema, _components()["schemas"])
    return schema


def validate(op: Operation, status: int, body: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `body` fits the spec's schema for `status`."""
    schema = response_schema(op, status)
    assert schema is not None, f"{op.name} {status} has no JSON body in the description"
    # The response schema refers to "#/components/...": give it the components at its root.
    OAS30Validator({**schema, "components": _components()}).validate(body)
