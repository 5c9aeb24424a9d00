"""The entry points: a file or a text in, a validated `Config` out, or every problem at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from runner.config.environment import Preparer
from runner.config.located import Problems, parse
from runner.config.messages import pydantic_problems
from runner.config.models import Config
from runner.errors import ConfigError


def load_config_text(
    text: str,
    filename: str = "config.yaml",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate config text into a `Config`.

    Args:
        text: the YAML.
        filename: how messages name the file (and `Config.source`).
        env: for `${VAR}`, `$CREDENTIALS_DIRECTORY`, `$STATE_DIRECTORY`, `$XDG_STATE_HOME`,
            `$HOME` and `$TZ`; defaults to `os.environ`.
        base_dir: what relative paths are relative to; defaults to the folder of `filename`.

    Returns:
        The validated, frozen configuration.

    Raises:
        ConfigError: with every problem found, each `FILE:LINE:COL: key.path: message`.
    """
    env = os.environ if env is None else env
    base = (base_dir if base_dir is not None else Path(filename).parent).absolute()
    problems = Problems(filename)
    data, tree = parse(text, env, problems)
    if data is None:  # a YAML syntax error: nothing below would be meaningful
        raise ConfigError(problems.lines())
    if not isinstance(data, dict):
        problems.add((1, 1), (), "the file must be a mapping with keys like spotify: and jobs:")
        raise ConfigError(problems.lines())
    preparer = Preparer(tree, problems, env, base)
    prepared = preparer.prepare(data)
    prepared["source"] = filename
    config: Config | None = None
    try:
        config = Config.model_validate(prepared)
    except ValidationError as exc:
        pydantic_problems(exc, tree, preparer.moved, problems)
    if problems.items or config is None:
        # `from None`: pydantic's own error text quotes inputs, secrets included.
        raise ConfigError(problems.lines() or [f"{filename}: invalid configuration"]) from None
    config._positions = dict(tree.values)
    config._key_positions = dict(tree.keys)
    return config


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file.

    Args:
        path: the file; messages name it as given.
        env: see `load_config_text`; defaults to `os.environ`.

    Raises:
        ConfigError: the file is missing or unreadable, or has problems (all of them).
    """
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"{name}: no such file; copy config.example.yaml to {name} and edit it"]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{name}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{name}:{line}:1: not UTF-8 text"]) from None
    return load_config_text(text, filename=name, env=env, base_dir=Path(name).parent)
