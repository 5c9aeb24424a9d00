"""pydantic's validation errors turned into located, plain-language problem lines."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from runner.config.fields import show
from runner.config.located import KeyPath, Problems, Tree, nearest
from runner.config.models import (
    EXTRA_KEYS,
    HIDDEN_KEYS,
    MISSING_HINTS,
    AccountConfig,
    Config,
    JobConfig,
    ScheduleConfig,
    SpotifyConfig,
)
from runner.config.monitoring import HttpConfig, NotifyConfig

# Values never quoted in a message, wherever they come from.
_SECRET_KEYS = frozenset({"client_secret", "refresh_token"})


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    if path == ():
        return Config
    if path == ("spotify",):
        return SpotifyConfig
    if path == ("notify",):
        return NotifyConfig
    if path == ("http",):
        return HttpConfig
    if len(path) == 2 and path[0] == "accounts":
        return AccountConfig
    if len(path) == 2 and path[0] == "jobs":
        return JobConfig
    if len(path) == 3 and path[0] == "jobs" and path[2] == "schedule":
        return ScheduleConfig
    return None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    hidden = HIDDEN_KEYS.get(model, ())
    names = [name for name in model.model_fields if name not in hidden]
    return sorted([*names, *EXTRA_KEYS.get(model, ())])


def unknown_key_message(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return f"unknown key '{key}'"
    allowed = _allowed_keys(model)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"


def _missing_message(path: KeyPath) -> str:
    pattern = tuple("*" if i == 1 and path[0] == "jobs" else p for i, p in enumerate(path))
    return MISSING_HINTS.get(pattern, "required key missing")


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "datetime_type": "a date and time like 2026-12-24T18:00:00",
    "datetime_parsing": "a date and time like 2026-12-24T18:00:00",
    "datetime_from_date_parsing": "a date and time like 2026-12-24T18:00:00",
    "path_type": "a path",
}


def _is_secret(path: KeyPath) -> bool:
    if len(path) == 2 and path[0] == "spotify":
        return path[1] in _SECRET_KEYS
    return len(path) == 3 and path[0] == "accounts" and path[2] in _SECRET_KEYS


def pydantic_problems(
    exc: ValidationError, tree: Tree, moved: Mapping[KeyPath, KeyPath], problems: Problems
) -> None:
    errors = exc.errors(include_url=False, include_input=True)
    unknown: set[tuple[KeyPath, str]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            key = str(loc[-1])
            close = difflib.get_close_matches(key, _allowed_keys(_model_at(loc[:-1]) or Config))
            unknown.update((loc[:-1], name) for name in close[:1])
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        at_key = loc[-1:] == ("[key]",)
        path: KeyPath = loc[:-1] if at_key else loc
        if any(path[:end] in tree.broken for end in range(len(path) + 1)):
            continue  # already reported where it went wrong (an unset variable, say)
        path = moved.get(path, path)
        if kind == "missing":
            if (path[:-1], path[-1]) in unknown:
                continue  # the typo's "did you mean" already says it
            parent = path[:-1]
            position = tree.keys.get(parent) or nearest(tree.values, parent)
            problems.add(position, path, _missing_message(path))
            continue
        if kind == "extra_forbidden":
            position = nearest(tree.keys, path)
            problems.add(position, path, unknown_key_message(_model_at(path[:-1]), str(path[-1])))
            continue
        position = nearest(tree.keys if at_key else tree.values, path)
        if kind == "config":
            message = error["msg"]
        elif kind in _TYPE_WORDS:
            expected = _TYPE_WORDS[kind]
            if _is_secret(path):
                message = f"invalid value (not shown): expected {expected}"
            else:
                message = f"expected {expected}, got {show(error.get('input'))}"
        else:
            message = error["msg"].removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        problems.add(position, path, message)
