"""What is done around Flask, in plain WSGI, because doing it inside cost the busiest requests
more than their answer: the replayed answer of a polled JSON path, the security headers, and
the session cookie's signer and saving."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from ..web import SECURITY_HEADERS
from .memo import Memo


class ReplayLastAnswer:
    """WSGI middleware: ``GET path`` answered without Flask with the answer its view kept last
    under ``name`` (memo.py), while the change watch says the database has not changed since.

    Every open landing page polls /api/stats, so it is the busiest path by far; what Flask
    does around a request (contexts, session, hooks, routing) cost more than the answer itself.
    The kept answer has ``etag`` (quoted), ``body``, ``content_type`` and ``cache_headers``.
    Only the two usual requests are answered here (no If-None-Match, or exactly the current
    ETag); anything else, and any request while the watch cannot tell, goes to the view.
    """

    def __init__(self, wsgi_app, memo: Memo, *, path: str, name: str):
        self.wsgi_app = wsgi_app
        self.memo = memo
        self.path = path
        self.name = name

    def __call__(self, environ, start_response):
        if (
            environ.get("PATH_INFO") == self.path
            and environ.get("REQUEST_METHOD") == "GET"
            and not environ.get("QUERY_STRING")
        ):
            answer = self.memo.peek(self.name)
            if answer is not None:
                asked = environ.get("HTTP_IF_NONE_MATCH")
                if asked is None:
                    headers = [
                        ("Content-Type", answer.content_type),
                        ("Content-Length", str(len(answer.body))),
                        *answer.cache_headers,
                    ]
                    start_response("200 OK", headers)
                    return [answer.body]
                if asked == answer.etag:
                    start_response("304 NOT MODIFIED", list(answer.cache_headers))
                    return []
        return self.wsgi_app(environ, start_response)


CSP = "Content-Security-Policy"
_BESIDE_OWN_POLICY = tuple((name, value) for name, value in SECURITY_HEADERS if name != CSP)


class SecurityHeaders:
    """WSGI middleware adding web.SECURITY_HEADERS to every response, error pages included;
    a response with a Content-Security-Policy of its own (only the payment page sets one)
    keeps it.

    Done at the WSGI level, on the plain list of headers, because an after-request hook that
    goes through werkzeug's Headers cost a noticeable share of the busiest requests.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            if any(name == CSP for name, _value in headers):
                headers.extend(_BESIDE_OWN_POLICY)  # the payment page's, with Stripe.js
            else:
                headers.extend(SECURITY_HEADERS)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer made once per key, not per request."""

    def __init__(self) -> None:
        self._signer: tuple[object, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if self._signer is None or self._signer[0] != keys:
            self._signer = (keys, super().get_signing_serializer(app))
        return self._signer[1]

    def save_session(self, app: Flask, session, response) -> None:
        # A request that never looked at an empty session has nothing to save or delete
        # (Flask's own method would come to the same after reading five settings).
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)
