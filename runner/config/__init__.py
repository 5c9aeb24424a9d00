"""The configuration: YAML in, typed `Config` out, in one pass.

Every problem is reported at once, one line each, as `FILE:LINE:COL: key.path: message`, so a
user fixes a broken config in one round instead of one error per restart.

How a file becomes a `Config`, one module per step:

1. `located`: PyYAML composes the document into nodes; `Tree` walks them itself (instead of
   letting PyYAML construct the objects) so it can record where every key and value sits, and
   report duplicate keys, which PyYAML would silently let the last one win.
2. `interpolation`: strings get `${VAR}` / `${VAR:-default}` from the environment (`$$` is a
   literal dollar).
3. `environment`: `*_file` secrets are read, defaults that depend on the environment are filled
   in (`state_dir`, `timezone`), and relative paths are resolved against the config's folder.
4. `models` (with the field checks in `fields`): pydantic validates the result into frozen
   models; `messages` maps its errors back to key paths, positions and plain-language messages.
5. `loading`: `load_config` and `load_config_text` run the steps above.

The YAML dialect is YAML 1.1 as PyYAML reads it, except that only `true`/`false` are booleans
and only plain decimal numbers are integers: `market: NO` stays the string "NO" (Norway is a
Spotify market) and `id: 0123` keeps its leading zero. Boolean settings still accept
yes/no/on/off. Merge keys (`<<: *anchor`) work, and top-level keys starting with `x-` are
ignored so that they can hold anchors.

Secrets (`client_secret`, `refresh_token`) are `SecretStr` and never quoted in error messages.
"""

from runner.config.loading import load_config, load_config_text
from runner.config.models import (
    APP_NAME,
    DEFAULT_ACCOUNT,
    DEFAULT_ACCOUNTS_URL,
    DEFAULT_API_URL,
    DEFAULT_REDIRECT_URI,
    AccountConfig,
    Config,
    JobConfig,
    ScheduleConfig,
    SpotifyConfig,
)

__all__ = [
    "APP_NAME",
    "DEFAULT_ACCOUNT",
    "DEFAULT_ACCOUNTS_URL",
    "DEFAULT_API_URL",
    "DEFAULT_REDIRECT_URI",
    "AccountConfig",
    "Config",
    "JobConfig",
    "ScheduleConfig",
    "SpotifyConfig",
    "load_config",
    "load_config_text",
]
