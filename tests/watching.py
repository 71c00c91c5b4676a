"""Waiting for the change watch (necreg/speed/watch.py) to have heard of every change so far."""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import create_engine, text

from necreg.speed.memo import memo_of
from necreg.triggers import NOTIFY_CHANNEL


def settle(app: Flask, seconds: float = 10) -> None:
    """Return once this process's watch has received every change notice committed so far.

    PostgreSQL delivers notices in commit order, so a marker notice sent now arrives after all
    of them. A test that counts the queries of a page seen again calls this first: on a busy
    machine a notice of its own setup's commits may arrive only after the page was first made,
    and count as a change. On SQLite (data_version) there is nothing in flight."""
    watch = memo_of(app).watch
    url = str(app.config["DATABASE_URL"])
    if watch is None or not url.startswith("postgresql"):
        return
    before = watch.token()
    if before is None:  # not connected yet: the first request connects it, hearing all after
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    finally:
        engine.dispose()
    deadline = time.monotonic() + seconds
    while watch.token() == before:
        if time.monotonic() > deadline:
            raise AssertionError(f"the change watch heard nothing within {seconds} s")
        time.sleep(0.001)
