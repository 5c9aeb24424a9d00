"""`${VAR}` interpolation of config strings from the environment.

`${VAR}` is the variable's value, `${VAR:-default}` the default when it is unset or empty, and
`$$` a literal dollar; a lone `$` stays as it is. Interpolation happens per YAML scalar, before
validation, so a secret is usually written as `client_secret: ${SPOTIFY_CLIENT_SECRET}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A reference that cannot be expanded. The message never quotes the text: it may be a
    secret that merely contains "${"."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand `${VAR}`, `${VAR:-default}` and `$$` in `text` from `env`.

    Raises:
        InterpolationError: an unclosed or malformed reference, or an unset variable without
            a default.
    """
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (start := text.find("$", pos)) >= 0:
        out.append(text[pos:start])
        following = text[start + 1 : start + 2]
        if following == "$":
            out.append("$")
            pos = start + 2
            continue
        if following != "{":
            out.append("$")
            pos = start + 1
            continue
        end = text.find("}", start + 2)
        if end < 0:
            raise InterpolationError("unclosed '${' (write '$$' for a literal '$')")
        name, sep, default = text[start + 2 : end].partition(":-")
        if not _VAR_NAME.fullmatch(name):
            raise InterpolationError(
                "bad variable reference: use ${NAME} or ${NAME:-default} "
                "(write '$$' for a literal '$')"
            )
        value = env.get(name)
        if sep and not value:
            value = default
        if value is None:
            raise InterpolationError(
                f"environment variable {name} is not set (export it, or use ${{{name}:-default}})"
            )
        out.append(value)
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)
