"""Turning an outbox row into a MIME message, and the backends that deliver it."""

from __future__ import annotations

import base64
import os
import smtplib
import ssl
import tempfile
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol

from ..config import smtp_implicit_tls
from ..models import OutboxMessage, utcnow
from ..qr import qr_png

#: Seconds an SMTP connection may stall before the attempt counts as failed.
SMTP_TIMEOUT_SECONDS = 30
#: Header fields whose value is a link that mail programs read as it is: never folded (the
#: email package would fold a long one into RFC 2047 encoded words, which they do not decode).
UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class MailPolicy(policy.EmailPolicy):
    """The email package's default policy, but for the UNFOLDED fields, written on one line
    (RFC 5322 allows 998 characters)."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() in UNFOLDED and str(value).isascii():
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in UNFOLDED and str(value).isascii():
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


#: How messages are built, and written for SMTP (CRLF line ends).
MAIL_POLICY = MailPolicy()
SMTP_POLICY = MAIL_POLICY.clone(linesep="\r\n")


def build_message(
    message: OutboxMessage, sender: str, *, now: datetime | None = None
) -> EmailMessage:
    """The MIME message: plain text and HTML alternatives, then the attachments.

    The Message-ID is derived from the outbox row, so should a message ever be handed over
    twice (a worker dying between sending and recording), receivers can tell it is the same.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = message.subject
    msg["From"] = sender
    msg["To"] = message.to_address
    msg["Date"] = format_datetime(now or utcnow())
    msg["Message-ID"] = f"<necreg.{message.id}.{message.kind}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (message.headers or {}).items():
        msg[name] = value
    msg.set_content(message.text_body)
    attachments = message.attachments or []
    if message.html_body:
        msg.add_alternative(message.html_body, subtype="html")
        html_part = msg.get_payload()[-1]
        for image in (a for a in attachments if a.get("content_id")):
            # An image the HTML shows inline (<img src="cid:...">), related to that part.
            maintype, _, subtype = image["content_type"].partition("/")
            html_part.add_related(
                qr_png(image["qr_code"]),
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image['content_id']}>",
                filename=image["filename"],
                disposition="inline",
            )
    for attachment in attachments:
        if attachment.get("content_id"):
            continue
        maintype, _, subtype = attachment["content_type"].partition("/")
        # Bytes, not text: the email package would rewrite the line endings of text, and
        # an .ics file must keep its CRLFs. A binary file (a receipt) is kept in base64.
        if "content_base64" in attachment:
            content = base64.b64decode(attachment["content_base64"])
        else:
            content = attachment["content"].encode("utf-8")
        msg.add_attachment(
            content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment["filename"],
        )
    return msg


class Backend(Protocol):
    def send(self, msg: EmailMessage, message: OutboxMessage) -> None: ...

    def close(self) -> None: ...


class FileBackend:
    """Writes each message to ``<directory>/<id>-<kind>.eml`` (the embedded default)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, message: OutboxMessage) -> Path:
        return self.directory / f"{message.id}-{message.kind}.eml"

    def send(self, msg: EmailMessage, message: OutboxMessage) -> None:
        # Private to the site's user, as each message (mkstemp makes its file 0600).
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write a temporary file beside the target, then rename: a reader never sees half a
        # message, and a crash leaves no partial .eml behind.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msg.as_bytes(policy=SMTP_POLICY))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path_for(message))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass


class SMTPBackend:
    """Sends through an SMTP server with the standard library, one connection per round."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        use_tls: bool = False,
        implicit_tls: bool = False,
        username: str = "",
        password: str = "",
        timeout: float = SMTP_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """``use_tls``: STARTTLS after connecting; ``implicit_tls``: TLS from the start (port
        465). A ``username`` needs one of them: a password never crosses the network in clear.
        ``tls_context``: how the server's certificate is checked (the system's CAs)."""
        if use_tls and implicit_tls:
            raise ValueError("STARTTLS and implicit TLS exclude each other")
        if username and not (use_tls or implicit_tls):
            raise ValueError("an SMTP login needs STARTTLS or implicit TLS")
        self.host, self.port = host, int(port)
        self.use_tls, self.implicit_tls = use_tls, implicit_tls
        self.username, self.password = username, password
        self.timeout = timeout
        self.tls_context = tls_context
        self._connection: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        context = self.tls_context or ssl.create_default_context()
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.use_tls:
            try:
                connection.starttls(context=context)
            except BaseException:
                connection.close()
                raise
        return connection

    def _connect(self) -> smtplib.SMTP:
        if self._connection is None:
            connection = self._open()
            try:
                if self.username:
                    connection.login(self.username, self.password)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def send(self, msg: EmailMessage, message: OutboxMessage) -> None:
        try:
            refused = self._connect().send_message(msg, to_addrs=[message.to_address])
        except BaseException:
            # The connection may be half-way through a transaction: start afresh next time.
            self.close()
            raise
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()


def backend_from_config(config: Mapping[str, Any], instance_path: str | Path) -> Backend:
    name = str(config["MAIL_BACKEND"]).lower()
    if name == "file":
        return FileBackend(Path(instance_path) / "outbox")
    if name == "smtp":
        return SMTPBackend(
            config["MAIL_SERVER"],
            int(config["MAIL_PORT"]),
            use_tls=bool(config["MAIL_USE_TLS"]),
            implicit_tls=smtp_implicit_tls(config),
            username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"],
        )
    raise ValueError(f"MAIL_BACKEND must be 'smtp' or 'file', not {name!r}")
