"""Imports that wait until first use, to keep what runs before READY=1 short.

spotipy costs a third of the daemon's start-up (it imports redis, for a cache handler nobody
here uses), yet nothing before READY=1 needs it: job modules only name it in annotations and
`except` clauses. `defer("spotipy")` puts a stand-in into `sys.modules`; `import spotipy` then
returns the stand-in at no cost, and the first attribute read (`spotipy.Spotify`, an `except
spotipy.SpotifyException` that is reached, `import spotipy.oauth2`) imports the real module,
once, under a lock, after which the stand-in forwards every read to it. The daemon calls
`load_deferred()` right after READY=1, so the first run does not pay for it either.

(`importlib.util.LazyLoader` cannot do this: a second `import spotipy` reads the module's
`__spec__`, which makes it load at once.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_lock = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str, spec: Any) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self._real: types.ModuleType | None = None

    def _load(self) -> types.ModuleType:
        with _lock:
            if self._real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                try:
                    self._real = importlib.import_module(self.__name__)
                except BaseException:
                    sys.modules.setdefault(self.__name__, self)
                    raise
            return self._real

    def __getattr__(self, attr: str) -> Any:
        # Only called for what the stand-in itself lacks: everything but its own few names.
        return getattr(self._load(), attr)


def defer(name: str) -> None:
    """Makes `import name` free until the module is used; nothing when it is already imported."""
    with _lock:
        if name in sys.modules:
            return
        spec = importlib.util.find_spec(name)
        if spec is None:
            return  # not installed: let the real import report it where it happens
        sys.modules[name] = _Deferred(name, spec)


def load_deferred() -> None:
    """Imports now every deferred module not imported yet (for after READY=1)."""
    for module in list(sys.modules.values()):
        if isinstance(module, _Deferred):
            module._load()
