"""Finds job modules by name and checks them before anything runs.

Sources, in order: the built-in `jobs` package, `*.py` files in `jobs_dir`, a dotted import path,
and entry points in the group `spotify_runner.jobs`. A name found in two sources is an error (one
would silently shadow the other); an unknown name is an error that lists what exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic

import jobs as builtin_jobs
from runner.config import Config, JobConfig
from runner.errors import JobLoadError

ENTRY_POINT_GROUP = "spotify_runner.jobs"


@dataclass(frozen=True)
class JobModule:
    """A job module that passed the checks.

    Attributes:
        name: the name the config uses (`job: NAME`).
        origin: where it came from, for messages ("built-in", a file path, "entry point ...").
        run: the module's `run(ctx)`.
        scopes: the module's `SCOPES`.
        options_model: the module's `Options`, if any.
    """

    name: str
    origin: str
    module: ModuleType
    run: Callable[..., Any]
    scopes: frozenset[str]
    options_model: type[pydantic.BaseModel] | None


@dataclass(frozen=True)
class LoadedJob:
    """A configured job: its config, its module, and its validated options."""

    name: str
    config: JobConfig
    module: JobModule
    options: Any


def _builtin_names() -> set[str]:
    return {
        m.name for m in pkgutil.iter_modules(builtin_jobs.__path__) if not m.name.startswith("_")
    }


def _dir_names(jobs_dir: Path | None) -> set[str]:
    if jobs_dir is None or not jobs_dir.is_dir():
        return set()
    return {p.stem for p in jobs_dir.glob("*.py") if not p.stem.startswith("_")}


def _entry_point_names() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_jobs(jobs_dir: Path | None) -> dict[str, str]:
    """Every job name that can be used without a dotted path, with its source."""
    found: dict[str, str] = {}
    for name in sorted(_builtin_names()):
        found[name] = "built-in"
    for name in sorted(_dir_names(jobs_dir)):
        found.setdefault(name, f"jobs_dir {jobs_dir}")
    for name in sorted(_entry_point_names()):
        found.setdefault(name, "entry point")
    return found


def _import_file(path: Path) -> ModuleType:
    # A private module name per file, so a drop-in `hello.py` never collides with `jobs.hello`
    # and a reload (SIGHUP) re-reads the file instead of reusing sys.modules.
    mod_name = f"spotify_runner_jobs_dir.{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _resolve(name: str, jobs_dir: Path | None) -> tuple[ModuleType, str]:
    """Imports the module for `name`; raises LookupError with a message, or the import's error."""
    sources: list[str] = []
    if name in _builtin_names():
        sources.append("built-in")
    if name in _dir_names(jobs_dir):
        sources.append(f"{jobs_dir}/{name}.py")
    eps = _entry_point_names()
    if name in eps:
        sources.append(f"entry point {eps[name].value}")
    if len(sources) > 1:
        raise LookupError(
            f"job '{name}' is defined more than once ({', '.join(sources)}): rename one of them"
        )
    if sources == ["built-in"]:
        return importlib.import_module(f"jobs.{name}"), "built-in"
    if sources and sources[0].endswith(".py"):
        assert jobs_dir is not None
        return _import_file(jobs_dir / f"{name}.py"), sources[0]
    if sources:
        loaded = eps[name].load()
        if not isinstance(loaded, ModuleType):
            raise LookupError(f"entry point '{name}' must name a module, not {loaded!r}")
        return loaded, sources[0]
    if "." in name:
        try:
            return importlib.import_module(name), name
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                raise LookupError(f"no module named '{name}'") from None
            raise
    known = ", ".join(available_jobs(jobs_dir)) or "none"
    hint = "" if jobs_dir else " (set jobs_dir to use your own modules)"
    raise LookupError(f"unknown job '{name}': available jobs are {known}{hint}")


def _check_module(name: str, module: ModuleType, origin: str) -> JobModule:
    run = getattr(module, "run", None)
    if not callable(run):
        raise LookupError(f"job module '{name}' ({origin}) has no run(ctx) function")
    try:
        inspect.signature(run).bind(object())
    except TypeError:
        raise LookupError(f"job module '{name}': run must take one argument, ctx") from None
    scopes: Iterable[Any] = getattr(module, "SCOPES", ())
    if isinstance(scopes, str) or not all(isinstance(s, str) for s in scopes):
        raise LookupError(f"job module '{name}': SCOPES must be a list of strings")
    options_model = getattr(module, "Options", None)
    if options_model is not None and not (
        isinstance(options_model, type) and issubclass(options_model, pydantic.BaseModel)
    ):
        raise LookupError(f"job module '{name}': Options must be a pydantic model class")
    return JobModule(name, origin, module, run, frozenset(scopes), options_model)


def find_job(name: str, jobs_dir: Path | None = None) -> JobModule:
    """Finds, imports and checks the job module called `name`.

    Raises:
        LookupError: with a one-line message when it cannot be used.
    """
    try:
        module, origin = _resolve(name, jobs_dir)
    except LookupError:
        raise
    except Exception as exc:  # the module's own import failed: a bug in the job
        raise LookupError(
            f"job module '{name}' failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return _check_module(name, module, origin)


def _format_loc(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def validate_options(
    job: JobModule,
    raw: Mapping[str, Any],
    *,
    where: Callable[..., str],
    where_key: Callable[..., str] | None = None,
    prefix: tuple[str, ...],
) -> tuple[Any, list[str]]:
    """Validates a job's `options` with its `Options` model.

    Args:
        job: the module.
        raw: the `options` mapping from the config.
        where: gives "file:line:col" for a key path's value (`Config.locate`).
        where_key: the same for the key itself (`Config.locate_key`), for unknown keys.
        prefix: the key path of `options` in the config.

    Returns:
        The options object (or the raw dict when the module has no model) and the problems found.
    """
    model = job.options_model
    if model is None:
        if raw:
            keys = ", ".join(sorted(raw))
            return dict(raw), [
                f"{where(*prefix)}: {_format_loc(prefix)}: job '{job.name}' takes no options "
                f"(got {keys})"
            ]
        return {}, []
    key_at = where_key or where
    problems: list[str] = []
    # A model that does not forbid extra keys would silently drop a misspelt option.
    if model.model_config.get("extra") != "forbid":
        allowed = {f.alias or n for n, f in model.model_fields.items()} | set(model.model_fields)
        for key in raw:
            if key not in allowed:
                extra = (*prefix, key)
                problems.append(
                    f"{key_at(*extra)}: {_format_loc(extra)}: unknown option "
                    f"(allowed: {', '.join(sorted(model.model_fields))})"
                )
    try:
        return model.model_validate(dict(raw)), problems
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            # List indexes stay ints, so `locate` finds the right list item's line.
            path: tuple[str | int, ...] = (*prefix, *err["loc"])
            msg, at = err["msg"], where
            if err["type"] == "extra_forbidden":
                owner = _model_at(model, err["loc"][:-1])
                names = f" (allowed: {', '.join(sorted(owner.model_fields))})" if owner else ""
                msg, at = f"unknown option{names}", key_at
            problems.append(f"{at(*path)}: {_format_loc(path)}: {msg}")
        return None, problems


def _model_in(annotation: Any) -> type[pydantic.BaseModel] | None:
    """The one pydantic model inside an annotation (`X`, `X | None`, `list[X]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    found = {m for m in map(_model_in, typing.get_args(annotation)) if m is not None}
    return found.pop() if len(found) == 1 else None


def _model_at(
    model: type[pydantic.BaseModel], loc: Iterable[str | int]
) -> type[pydantic.BaseModel] | None:
    """The nested model an error location points into, when it can be told for sure."""
    current: type[pydantic.BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return current


def load_jobs(config: Config, *, only: Iterable[str] | None = None) -> dict[str, LoadedJob]:
    """Loads and checks every configured job (or those named in `only`).

    Raises:
        JobLoadError: listing every problem found, each pointing at the config line.
    """
    wanted = set(only) if only is not None else None
    problems: list[str] = []
    loaded: dict[str, LoadedJob] = {}
    jobs_dir = config.jobs_dir
    dir_missing = jobs_dir is not None and not jobs_dir.is_dir()
    if jobs_dir is not None and dir_missing:
        # Said once, where it is set: each job living there would otherwise be "unknown".
        what = "is not a folder" if jobs_dir.exists() else "does not exist"
        problems.append(
            f"{config.locate('jobs_dir')}: jobs_dir: {jobs_dir} {what}: create it, or fix the path"
        )
    for job_name, job_cfg in config.jobs.items():
        if wanted is not None and job_name not in wanted:
            continue
        try:
            module = find_job(job_cfg.job, jobs_dir)
        except LookupError as exc:
            if not dir_missing:
                where = config.locate("jobs", job_name, "job")
                problems.append(f"{where}: jobs.{job_name}.job: {exc}")
            continue
        options, option_problems = validate_options(
            module,
            job_cfg.options,
            where=config.locate,
            where_key=config.locate_key,
            prefix=("jobs", job_name, "options"),
        )
        problems.extend(option_problems)
        if not option_problems:
            loaded[job_name] = LoadedJob(job_name, job_cfg, module, options)
    if problems:
        raise JobLoadError(problems)
    return loaded


def required_scopes(jobs: Iterable[LoadedJob]) -> frozenset[str]:
    """The union of the scopes every job needs."""
    out: set[str] = set()
    for job in jobs:
        out |= job.module.scopes
    return frozenset(out)
