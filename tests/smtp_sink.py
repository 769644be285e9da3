"""A small SMTP server that keeps what it is sent: for tests and the bench, stdlib only.

    with SmtpSink() as sink:                # listens on a free loopback port
        ... EMAIL_URL=sink.url ...          # smtp://127.0.0.1:<port>
        sink.wait_for(1)                    # the messages, once at least one has arrived
        sink.messages[0].rcpt_to, sink.messages[0].message["Subject"]

It speaks just enough SMTP for Django's SMTP backend (and smtplib): HELO/EHLO, MAIL FROM,
RCPT TO, DATA, RSET, NOOP, QUIT; no TLS, no AUTH. Each accepted message is recorded with its
envelope and its raw bytes (dot-stuffing undone, CRLF line ends kept).

Faults, for tests of a failing mail server: ``sink.fault`` is called with each command's verb
(``"MAIL"``, ``"RCPT"``, ``"DATA"``, ``"QUIT"`` — and ``"."`` for the end of the data) before
the sink answers it; returning ``(code, text)`` sends that reply instead (a 4xx/5xx refuses
the command or the message, which is then not recorded), returning ``DROP`` closes the
connection without a reply, returning None carries on normally. It is also called with
``"CONNECT"`` before the greeting, where ``HANG`` makes a server that accepts the connection
and then never says a word (until the client leaves), and with ``"QUEUED"`` once a message is
recorded, before its 250 (``DROP`` there: the server has the message, the client never hears
so). A fault may block, to hold the conversation at that point.

When the sink records a message: at the end of the data, once ``fault(".")`` lets it, and
only if the client is still connected then (a client gone before that point is a message the
server never took, as a server that has not yet queued it). ``Received.at`` is that moment
(``time.monotonic()``).
"""

import contextlib
import email
import email.policy
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

DROP = "drop"
HANG = "hang"


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    at: float = 0.0  # time.monotonic() when the sink took it

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def calendar(self) -> str:
        """The text of the message's ``text/calendar`` part ("" if it has none)."""
        for part in self.message.walk():
            if part.get_content_type() == "text/calendar":
                return part.get_content()
        return ""


def _address(argument: str) -> str:
    # "FROM:<a@b> SIZE=123" -> "a@b"
    value = argument.split(":", 1)[1].strip() if ":" in argument else argument
    if value.startswith("<"):
        value = value[1 : value.find(">")]
    return value.split()[0] if value else ""


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30  # a client that goes quiet does not hold a thread forever

    def reply(self, code: int, text: str) -> None:
        self.wfile.write(f"{code} {text}\r\n".encode())
        self.wfile.flush()

    def faulted(self, verb: str) -> bool:
        fault = self.server.sink.fault
        self.server.sink.local.client = self.client_address
        outcome = fault(verb) if fault else None
        if outcome is None:
            return False
        if outcome == DROP:
            raise ConnectionAbortedError(verb)
        if outcome == HANG:
            while self.rfile.readline():  # read and never answer, until the client leaves
                pass
            raise ConnectionAbortedError(verb)
        self.reply(*outcome)
        return True

    def client_gone(self) -> bool:
        """Whether the client has closed (or reset) the connection: nothing left to read."""
        sock = self.connection
        if not select.select([sock], [], [], 0)[0]:
            return False  # nothing to read: it is waiting for our reply
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def handle(self) -> None:
        try:
            with contextlib.suppress(OSError):  # a client gone, or silent too long
                self.converse()
        finally:
            self.server.sink.conversation_ended()

    def converse(self) -> None:
        if self.faulted("CONNECT"):
            return
        self.reply(220, "sink ESMTP")
        mail_from, rcpt_to = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = text.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply(250, "sink")
            elif verb in {"NOOP", "RSET"}:
                if verb == "RSET":
                    mail_from, rcpt_to = None, []
                self.reply(250, "OK")
            elif verb == "QUIT":
                if not self.faulted(verb):
                    self.reply(221, "Bye")
                return
            elif verb == "MAIL":
                if not self.faulted(verb):
                    mail_from, rcpt_to = _address(argument), []
                    self.reply(250, "OK")
            elif verb == "RCPT":
                if mail_from is None:
                    self.reply(503, "MAIL first")
                elif not self.faulted(verb):
                    rcpt_to.append(_address(argument))
                    self.reply(250, "OK")
            elif verb == "DATA":
                if not rcpt_to:
                    self.reply(503, "RCPT first")
                elif not self.faulted(verb):
                    self.reply(354, "End data with <CR><LF>.<CR><LF>")
                    data = self.read_data()
                    if not self.faulted("."):
                        if self.client_gone():
                            return
                        received = Received(mail_from, tuple(rcpt_to), data, time.monotonic())
                        self.server.sink.record(received)
                        if not self.faulted("QUEUED"):
                            self.reply(250, "OK: queued")
                    mail_from, rcpt_to = None, []
            else:
                self.reply(502, "Command not implemented")

    def read_data(self) -> bytes:
        lines = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise ConnectionAbortedError("DATA")
            if line in {b".\r\n", b".\n"}:
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, sink: "SmtpSink"):
        self.sink = sink
        super().__init__(address, _Handler)


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, chosen at start()
    fault: Callable[[str], tuple[int, str] | str | None] | None = None
    _messages: list[Received] = field(default_factory=list, repr=False)
    ended: int = 0  # conversations over (whatever their outcome): a test can wait for one
    # In a fault: ``sink.local.client``, the (host, port) of the client it is answering.
    local: threading.local = field(default_factory=threading.local, repr=False)
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _server: _Server | None = field(default=None, repr=False)

    def start(self) -> "SmtpSink":
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The EMAIL_URL that sends here."""
        return f"smtp://{self.host}:{self.port}"

    def record(self, received: Received) -> None:
        with self._arrived:
            self._messages.append(received)
            self._arrived.notify_all()

    def conversation_ended(self) -> None:
        with self._arrived:
            self.ended += 1

    @property
    def messages(self) -> list[Received]:
        with self._arrived:
            return list(self._messages)

    def to(self, address: str) -> list[Received]:
        """The messages with ``address`` among their envelope recipients (exact match)."""
        return [m for m in self.messages if address in m.rcpt_to]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until at least ``count`` messages have arrived; then all of them."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(
                    f"the SMTP sink got {len(self._messages)} message(s) in {timeout}s, not {count}"
                )
            return list(self._messages)
