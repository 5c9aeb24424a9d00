"""What every Web API handler shares: the call context, routes, parameters, paging, scopes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from runner.testing.fake.fields import FieldsError, apply_fields, parse_fields
from runner.testing.fake.model import BASE62_ID, AccessToken
from runner.testing.fake.model import User as UserRecord
from runner.testing.fake.state import FakeState
from runner.testing.fake.wire import ApiError, Request, Response, json_response

MAX_PAGE = 50
# Query parameters Spotify carries from a request into its `next`/`previous` links.
KEPT_IN_LINKS = ("fields", "market", "additional_types")


@dataclass
class Ctx:
    """One authenticated API call.

    Attributes:
        account: the user the token speaks for; None for a client-credentials token.
    """

    state: FakeState
    req: Request
    token: AccessToken
    account: UserRecord | None
    args: tuple[str, ...]

    @property
    def user(self) -> UserRecord:
        """The token's user; a client-credentials token has none (401, as Spotify answers)."""
        if self.account is None:
            raise ApiError(401, "This request requires user authentication.")
        return self.account

    def has_scope(self, scope: str) -> bool:
        """Whether the token carries `scope`."""
        return scope in self.token.scopes


Handler = Callable[[Ctx], Response]


@dataclass(frozen=True)
class Route:
    """A served route: method, OpenAPI path template (relative to /v1) and handler.

    Attributes:
        scopes: the token needs one of these (empty: none, or the handler checks itself).
    """

    method: str
    template: str
    handler: Handler
    scopes: frozenset[str] = frozenset()

    @property
    def pattern(self) -> re.Pattern[str]:
        """The template as a regex, each `{param}` one path segment."""
        return re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", self.template) + "$")


def route(method: str, template: str, handler: Handler, *scopes: str) -> Route:
    """A `Route` whose token must carry one of `scopes`."""
    return Route(method, template, handler, frozenset(scopes))


def int_param(
    req: Request, name: str, default: int, low: int, high: int | None, message: str
) -> int:
    """An integer query parameter within [low, high], or 400 with `message`."""
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, message) from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, message)
    return value


def required(req: Request, name: str) -> str:
    """A required query parameter, or 400."""
    value = req.query.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Missing required parameter: {name}")
    return value


def limit(req: Request, default: int = 20, high: int = MAX_PAGE, low: int = 1) -> int:
    """`limit` within the route's bounds."""
    return int_param(req, "limit", default, low, high, "Invalid limit")


def offset(req: Request, high: int | None = None) -> int:
    """`offset`, at least 0."""
    return int_param(req, "offset", 0, 0, high, "Invalid offset")


def require_scope(ctx: Ctx, *any_of: str) -> None:
    """403 unless the token carries one of `any_of`."""
    if not ctx.token.scopes & set(any_of):
        raise ApiError(403, "Insufficient client scope")


def catalog_id(ctx: Ctx, store: dict[str, Any]) -> Any:
    """The record the path's id names: 400 for a malformed id, 404 for an unknown one."""
    item_id = ctx.args[0]
    if BASE62_ID.match(item_id) is None:
        raise ApiError(400, "invalid id")
    record = store.get(item_id)
    if record is None:
        raise ApiError(404, "Resource not found")
    return record


def url(ctx: Ctx, path: str, params: dict[str, Any]) -> str:
    """An absolute API URL with a query string."""
    clean = {k: v for k, v in params.items() if v is not None}
    return f"{ctx.state.api_url}{path}" + (f"?{urlencode(clean)}" if clean else "")


def page(
    ctx: Ctx,
    path: str,
    items: list[Any],
    start: int,
    size: int,
    total: int,
    extra: dict[str, Any] | None = None,
    max_offset: int | None = None,
    keep: Iterable[str] = KEPT_IN_LINKS,
) -> dict[str, Any]:
    """A paging object; `items` is the page itself. `next`/`previous` are absolute URLs that
    keep the request's `fields`, `market` and `additional_types` (those named in `keep`)."""
    params = {k: ctx.req.query[k] for k in keep if ctx.req.query.get(k)}
    params.update(extra or {})
    next_offset = start + size
    has_next = size > 0 and next_offset < total
    has_next = has_next and (max_offset is None or next_offset <= max_offset)
    return {
        "href": url(ctx, path, {**params, "offset": start, "limit": size}),
        "items": items,
        "limit": size,
        "next": url(ctx, path, {**params, "offset": next_offset, "limit": size})
        if has_next
        else None,
        "offset": start,
        "previous": url(ctx, path, {**params, "offset": max(0, start - size), "limit": size})
        if start > 0
        else None,
        "total": total,
    }


def paged(
    ctx: Ctx,
    path: str,
    everything: list[Any],
    render: Callable[[Any], Any],
    default_limit: int = 20,
    high: int = MAX_PAGE,
    extra: dict[str, Any] | None = None,
    low: int = 1,
) -> dict[str, Any]:
    """Read `limit`/`offset`, render that slice of `everything` and page it (`extra`: more
    query parameters its links keep)."""
    size = limit(ctx.req, default_limit, high, low)
    start = offset(ctx.req)
    items = [render(x) for x in everything[start : start + size]]
    return page(ctx, path, items, start, size, len(everything), extra)


def json_body(req: Request) -> Any:
    """The parsed JSON body (None when empty); 400 when it does not parse."""
    if req.raw_body and req.body is None:
        raise ApiError(400, "Error parsing json")
    return req.body


def fields(req: Request, obj: Any) -> Any:
    """Apply the request's `fields` filter to `obj`."""
    text = req.query.get("fields")
    if not text:
        return obj
    try:
        return apply_fields(obj, parse_fields(text))
    except FieldsError:
        raise ApiError(400, "Invalid fields") from None


def ok(obj: Any, status: int = 200) -> Response:
    """A JSON answer."""
    return json_response(status, obj)


def no_content() -> Response:
    """204, as the player's commands answer."""
    return Response(204)
