"""Everything in necreg that exists only to be fast. Take this package away (and call the
builders directly) and every page says the same; it would only cost more.

**What is kept.** Per worker process, in one memo (``memo.kept(name, key, build)``):

- ``snapshot``: the current event's id, ``updated_at``, ``counts_version`` and registration
  window (stats.Snapshot); kept while nothing changes.
- ``event_heading``, ``landing``, ``register_form``: the event's name and hosts as layouts
  show them, the landing page, and the blank registration form (each visitor's CSRF token put
  in); kept per snapshot.
- ``api.stats``: the /api/stats answer, replayed before Flask by ``wsgi.ReplayLastAnswer``;
  kept while nothing changes (``api.stats.body`` per snapshot, for when there is no watch).
- ``attendee_list`` (the organizer list's content for the 64 latest searches) and
  ``organizer`` (per session token, 256 of them: the session's row and its organizer's, so a
  signed-in page seen again costs no query): kept while nothing changes. A revoked session
  announces itself on PostgreSQL (sessions.py), as the triggers do for their tables.
- ``organizer.dashboard``, ``.html``, ``.json`` and ``.page``: the dashboard's figures, their
  HTML and JSON, kept per snapshot; the whole page per snapshot and organizer (16), with a
  slot for each request's CSRF token.
- ``country_options`` (the country menu per chosen country) and ``attendee_list_frame``
  (what the organizer list shows that depends only on its filters: form, sort and export
  links; 64 filters): kept always, per key.

"While nothing changes" means: the change watch (``watch.py``) says the database has not
changed since the value was built. "Per snapshot" means: for the same snapshot of the event
(``stats.Snapshot``), which changes with every change of a tallied figure (``counts_version``
is the sum of the tallies' ``version``, counters.py), every change of the event
(``updated_at``) and the registration window opening or closing.

**What invalidates it.** Any commit to the database, by anyone:

- SQLite: ``PRAGMA data_version`` of a read-only connection of the worker's own changes
  whenever another connection commits to the file.
- PostgreSQL: statement triggers on ``events``, ``attendees`` and ``organizers``
  (``necreg/triggers.py``) NOTIFY ``necreg_changes``; each worker LISTENs on a connection of
  its own and reads what has arrived, without waiting, at each request.
- Commits made in the worker itself count at once.

**How another instance learns of a change.** The same way: PostgreSQL delivers the
notification at commit to every listening connection, on every machine (within a millisecond
here); SQLite instances share the file and its ``data_version``. A watch that lost its
connection answers "cannot tell", so every request builds afresh until it reconnects; the
setting CHANGE_WATCH=false turns the watch off (a transaction-pooling PgBouncer, where LISTEN
receives nothing): then only what is kept per snapshot or per key is kept.

**Around Flask** (``wsgi.py``): the replayed /api/stats answer, the security headers added to
the plain WSGI header list, and a session interface that makes its signer once and saves no
untouched empty session. **SQLite writers** (``sqlite_writers.py``) wait in line on a file
lock instead of polling for the database.

**The rule**, held by tests/test_layers.py: the domain modules (registration, checkin, events,
badges, attendee_search, stats, counters, mail) never import this package, and views use only
``memo.kept``. A fast path calls the rule it serves; it never restates it.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from ..extensions import db
from .memo import EXTENSION, Memo
from .watch import watch_for
from .wsgi import ReplayLastAnswer, SecurityHeaders, SessionInterface


def init_app(app: Flask, *, replayed: dict[str, str]) -> None:
    """Give ``app`` its memo and watch, and wrap it in the WSGI fast paths.

    ``replayed``: path -> memo name of a GET answered from its view's last answer.
    """
    with app.app_context():
        engine = db.engine
    watch = watch_for(engine) if app.config["CHANGE_WATCH"] else None
    if watch is not None:
        # Disposing of the engine (tests, shutdown) closes the watch's connection too.
        event.listen(engine, "engine_disposed", lambda _engine: watch.close())
    memo = app.extensions[EXTENSION] = Memo(watch)
    app.session_interface = SessionInterface()
    for path, name in replayed.items():
        app.wsgi_app = ReplayLastAnswer(app.wsgi_app, memo, path=path, name=name)  # type: ignore[method-assign]
    # Outside the replayed answers, so that they carry the security headers too.
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
