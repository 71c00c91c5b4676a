"""Real servers for tests: necreg under gunicorn on a free loopback port, stopped by pid; an
SMTP server (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import contextlib
import email
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from email import policy
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class _LoopbackServer:
    """A server process of the tests on a free loopback port (``port``), its log in a
    temporary file (a pipe nobody reads would fill up and stall it), stopped by its pid."""

    name = "server"

    def _start(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=self.log, text=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.read_log()}")
            with socket.socket() as sock:
                if sock.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start listening within 30 s")

    def read_log(self) -> str:
        self.log.seek(0)
        return self.log.read()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class GunicornServer(_LoopbackServer):
    """gunicorn with the project's gunicorn.conf.py on a free loopback port.

    ``settings`` become NECREG_* environment variables.
    """

    name = "gunicorn"

    def __init__(
        self,
        settings: dict[str, object],
        workers: int = 1,
        app: str = "necreg.wsgi:app",
        chdir: Path | None = None,
        bin_dir: Path = BIN,
    ):
        """``bin_dir``: the virtual environment's bin/ whose gunicorn (and necreg) to run."""
        self.port = free_port()
        env = {**os.environ, "NECREG_ACCESS_LOG": ""}
        env.update({f"NECREG_{k}": str(v) for k, v in settings.items()})
        args = [str(bin_dir / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")]
        args += ["--bind", f"{HOST}:{self.port}", "--workers", str(workers)]
        if chdir is not None:
            args += ["--chdir", str(chdir)]
        self._start([*args, app], env)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


class LocalStripe(_LoopbackServer):
    """localstripe (a stateful stand-in for Stripe's API, Stripe.js and webhooks) on a free
    loopback port, in a process of its own."""

    name = "localstripe"
    SCRIPT = (
        "import sys; from aiohttp import web; from localstripe.server import app;"
        " web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None)"
    )

    def __init__(self) -> None:
        self.port = free_port()
        self._start([sys.executable, "-c", self.SCRIPT, HOST, str(self.port)])

    def post(self, path: str, form: dict) -> dict:
        """POST ``form`` to localstripe as Stripe.js would (no secret key); its JSON."""
        import json

        request = urllib.request.Request(self.url + path, data=urlencode(form).encode())
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"{}")

    def flush(self) -> None:
        """Forget every object (payments, events, refunds) made so far."""
        request = urllib.request.Request(self.url + "/_config/data", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - loopback

    def card_token(self, number: str = "4242424242424242") -> str:
        """A single-use card token, as Stripe.js makes one in the browser."""
        card = {"number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"}
        form = {f"card[{k}]": v for k, v in card.items()} | {"key": "pk_test_necreg"}
        return self.post("/v1/tokens", form)["id"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browserless:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self) -> None:
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def open(self, url: str, form: dict | None = None, headers: dict | None = None):
        data = urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as exc:
            body = exc.read().decode()
            exc.close()
            return exc.code, body, exc.headers

    def csrf(self, url: str) -> str:
        _status, page, _headers = self.open(url)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        parsed = email.message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            self.received.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(m["Message-ID"] for m in self.received)


class SMTPServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class CuttableProxy:
    """A TCP proxy on the loopback to another server (PostgreSQL) that can be cut: every
    connection through it is closed at once and new ones are closed as soon as they come,
    as a restarting database does, until it is restored. Or its connections can be
    forgotten, as a firewall or a NAT forgets an idle connection: the server's side is
    closed, the client hears nothing until it sends, and then its connection is closed."""

    def __init__(self, upstream_port: int, upstream_host: str = HOST) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.down = False
        self.running = True
        #: Bytes the clients have sent to the server through the proxy.
        self.sent = 0
        self.upstream_of: dict[socket.socket, socket.socket] = {}  # client -> server
        self.forgotten: set[socket.socket] = set()  # clients not told their server went
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refused = self.down
            if refused:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.open.update((client, server))
                self.upstream_of[client] = server
            for source, target, upward in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, target, upward), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if upward:
                    with self.lock:
                        self.sent += len(chunk)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            if upward:  # the client sent or left: now it learns
                with self.lock:
                    self.forgotten.discard(source)
            self._close(source, target)

    def _close(self, *sockets: socket.socket) -> None:
        with self.lock:
            sockets = tuple(sock for sock in sockets if sock not in self.forgotten)
            for sock in sockets:
                self.open.discard(sock)
                self.upstream_of.pop(sock, None)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        with self.lock:
            self.down = True
            self.forgotten.clear()
            cut = list(self.open)
        self._close(*cut)

    def forget(self) -> None:
        """Close the server's side of every connection without a word to its client."""
        with self.lock:
            self.forgotten.update(self.upstream_of)
            servers = list(self.upstream_of.values())
        self._close(*servers)

    def restore(self) -> None:
        with self.lock:
            self.down = False

    def stop(self) -> None:
        self.running = False
        self.cut()
        self.listener.close()
