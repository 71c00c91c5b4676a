"""The one memo: what a page built from the database, kept per process and given again.

``kept(name, key, build)`` answers ``build()``, or what it gave before for the same name and
key while the change watch (watch.py) sees no change of the database since it was built:

- The watch's token is taken *before* building, so a change made while building is seen at
  the next call, never hidden: a value is never served for a newer state than it was made
  from.
- Without a watch that can tell (none configured, connection lost), every call builds.
- ``size``: how many keys of one name are kept, the most recently used.
- ``watched=False``: for a value that depends only on its key (a rendering per snapshot of the
  event, the country menu per chosen country). It is kept for as long as the same key is
  asked, whatever the watch says, so it serves without a watch too.

Each process has its own (a forked worker starts empty); nothing is shared or sent anywhere.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import Flask, current_app

from .watch import Watch

T = TypeVar("T")

#: app.extensions key of the app's Memo (the one key the speed package uses).
EXTENSION = "necreg.speed"
#: The token of a value that does not depend on the watch (``watched=False``).
_BY_KEY = ("by key",)


class Memo:
    """Values kept per name and key, each with the watch token it was built under."""

    def __init__(self, watch: Watch | None):
        self.watch = watch
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._names: dict[str, OrderedDict[Hashable, tuple[Hashable, Any]]] = {}

    def get(
        self,
        name: str,
        key: Hashable,
        build: Callable[[], T],
        *,
        size: int = 1,
        watched: bool = True,
    ) -> T:
        token = self._token() if watched else _BY_KEY
        if token is None:
            return build()
        with self._lock:
            kept = self._kept(name)
            hit = kept.get(key)
            if hit is not None and hit[0] == token:
                kept.move_to_end(key)
                return hit[1]
        value = build()
        with self._lock:
            kept = self._kept(name)
            kept[key] = (token, value)
            kept.move_to_end(key)
            while len(kept) > size:
                kept.popitem(last=False)
        return value

    def peek(self, name: str, key: Hashable = None) -> Any:
        """The watched value kept for ``name`` and ``key`` if the database has not changed
        since it was built, else None. Needs no app context (the WSGI fast path)."""
        token = self._token()
        if token is None:
            return None
        hit = self._kept(name).get(key)
        return hit[1] if hit is not None and hit[0] == token else None

    def clear(self) -> None:
        """Forget every value, as a process that starts afresh."""
        with self._lock:
            self._names = {}

    def _token(self) -> Hashable | None:
        return self.watch.token() if self.watch is not None else None

    def _kept(self, name: str) -> OrderedDict[Hashable, tuple[Hashable, Any]]:
        if self._pid != os.getpid():  # a forked worker never serves its parent's values
            self._names = {}
            self._pid = os.getpid()
        kept = self._names.get(name)
        if kept is None:
            kept = self._names[name] = OrderedDict()
        return kept


def memo_of(app: Flask) -> Memo:
    return app.extensions[EXTENSION]


def kept(
    name: str, key: Hashable, build: Callable[[], T], *, size: int = 1, watched: bool = True
) -> T:
    """``build()``, or what it gave before for ``name`` and ``key`` (see the module's page)."""
    return memo_of(current_app).get(name, key, build, size=size, watched=watched)
