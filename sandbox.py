"""Local stand-in for Vonage's SMS API, used when no Vonage credentials are configured.

``SandboxGateway`` serves ``POST /sms/json`` (form-encoded fields, HTTP Basic auth with any key
and secret) over HTTPS on 127.0.0.1. Its certificate comes from a fresh CA made per gateway with
trustme, and only a client given ``ca_path`` trusts it, so the real ``vonage`` SDK talks to it
over real TLS. It replies in the SMS API's JSON shape, splits long texts into parts with
``sms_encoding.split`` and then posts JSON delivery receipts (DLRs) for each part to
``http://127.0.0.1:{webhook_port}`` plus the path and query of the send's ``callback``. Receipts
never go to any other host.

The ``to`` number selects the outcome. Any number not listed behaves like 14155550100.

    14155550100  delivered
    14155550101  accepted, then delivered
    14155550102  buffered, then expired (err-code 1)
    14155550103  failed, err-code 6 (anti-spam)
    14155550104  rejected, err-code 9 (opted out)
    14155550105  delivered, then a late accepted with an earlier message-timestamp
    14155550106  delivered, the identical receipt posted three times
    14155550107  delivered, and the reply waits (at most 2 s) until the receipt is posted
    14155550151  send status 1, throttled
    14155550152  send status 2 (and 0155 to 0158: statuses 5 to 8)
    14155550153  send status 3, invalid parameters
    14155550154  send status 4, invalid credentials
    14155550159  send status 9, quota exceeded
    141555501SS  send status SS for SS = 10, 11, 12, 14, 15, 22, 23, 29, 32, 33
    14155550160  HTTP 500
    14155550161  HTTP 429
    14155550162  HTTP 401 (and 0163: HTTP 403, 0164: HTTP 502)
    14155550165  send status 1 on the first attempt, then accepted
    14155550166  HTTP 429 on the first attempt, then accepted
    14155550170  no reply for hang_seconds, then accepted and delivered
    14155550171  reads the request, then closes the connection without a reply
    14155550199  accepted, never a receipt
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import shutil
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import trustme

import sms_encoding

logger = logging.getLogger("smstrack.sandbox")

MESSAGE_PRICE = "0.00570000"
NETWORK_CODE = "310090"
DEFAULT_RECEIPT_PATH = "/webhooks/delivery-receipt"
# The sandbox account tops itself up to this balance instead of refusing sends with status 9.
STARTING_BALANCE = Decimal("100.00000000")
MAX_BODY_BYTES = 64 * 1024
CONNECTION_TIMEOUT_SECONDS = 30
RECEIPT_POST_TIMEOUT_SECONDS = 10
RECEIPT_POST_ATTEMPTS = 3
RECEIPT_RETRY_BACKOFF_SECONDS = 0.2  # doubled after each failed attempt
# An app served by a single worker cannot accept the early receipt while it waits for the send
# reply, so the reply waits at most this long for the receipt post.
EARLY_RECEIPT_MAX_WAIT_SECONDS = 2.0
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")

# Send statuses by number: 015S replies with status S for S below 10, and 01SS
# with the two-digit status SS. The error texts follow Vonage's wording where it is known.
# NOTE: the texts of statuses 2, 3, 5 to 8, 10, 11, 22, 23, 32 and 33 are modelled on
# Vonage's status table, not copied from real replies.
SEND_REJECTIONS = {
    "14155550151": ("1", "Throughput Rate Exceeded - please wait [ 30 ] and retry"),
    "14155550152": ("2", "Missing from param"),
    "14155550153": ("3", "Invalid Message type"),
    "14155550154": ("4", "Bad Credentials"),
    "14155550155": ("5", "Internal Error"),
    "14155550156": ("6", "Invalid Message"),
    "14155550157": ("7", "Number barred"),
    "14155550158": ("8", "Partner account barred"),
    "14155550159": ("9", "Quota Exceeded - rejected"),
    "14155550110": ("10", "Too many existing binds"),
    "14155550111": ("11", "Account not enabled for HTTP"),
    "14155550112": ("12", "Message too long"),
    "14155550114": ("14", "Invalid Signature"),
    "14155550115": ("15", "Illegal Sender Address - rejected"),
    "14155550122": ("22", "Invalid Network Code"),
    "14155550123": ("23", "Invalid Callback Url"),
    "14155550129": ("29", "Non White-listed Destination - rejected"),
    "14155550132": ("32", "Signature And API Secret Disallowed"),
    "14155550133": ("33", "Number De-activated"),
}
HTTP_FAILURES = {
    "14155550160": 500,
    "14155550161": 429,
    "14155550162": 401,
    "14155550163": 403,
    "14155550164": 502,
}
# Refused on the first attempt only (per client-ref): throttled, then accepted.
FIRST_ATTEMPT_REJECTIONS = {"14155550165": SEND_REJECTIONS["14155550151"]}
FIRST_ATTEMPT_HTTP_FAILURES = {"14155550166": 429}
HANG_NUMBER = "14155550170"
DROP_NUMBER = "14155550171"
EARLY_RECEIPT_NUMBER = "14155550107"
DUPLICATE_RECEIPT_COPIES = {"14155550106": 3}

# Error bodies in the RFC 7807 shape that Vonage's API error pages show. The type URLs are
# illustrative, not copied from a real response.
PROBLEMS = {
    400: ("bad-request", "Bad Request", "The Content-Length header is invalid."),
    401: ("unauthorized", "Unauthorized", "You did not provide correct credentials."),
    403: ("forbidden", "Forbidden", "Your account does not have permission for this action."),
    404: ("not-found", "Not Found", "The requested resource does not exist."),
    413: ("payload-too-large", "Payload Too Large", "The request body is too large."),
    429: ("throttled", "Too Many Requests", "Rate limit hit. Please wait and retry."),
    500: ("internal-error", "Internal Server Error", "An internal error occurred."),
    502: ("bad-gateway", "Bad Gateway", "An upstream service did not answer."),
}


@dataclass(frozen=True)
class ReceiptStep:
    """One delivery receipt in an outcome, dated ``offset_seconds`` after the send."""

    status: str
    err_code: str
    offset_seconds: int


DELIVERED = (ReceiptStep("delivered", "0", 0),)
RECEIPT_PLANS = {
    "14155550101": (ReceiptStep("accepted", "0", 0), ReceiptStep("delivered", "0", 1)),
    "14155550102": (ReceiptStep("buffered", "0", 0), ReceiptStep("expired", "1", 1)),
    "14155550103": (ReceiptStep("failed", "6", 0),),
    "14155550104": (ReceiptStep("rejected", "9", 0),),
    "14155550105": (ReceiptStep("delivered", "0", 1), ReceiptStep("accepted", "0", 0)),
    "14155550199": (),
}


@dataclass
class ReceiptJob:
    """Receipts for one send: ``steps`` holds, per receipt step, one receipt per part."""

    url: str
    log_path: str
    steps: list[list[dict]]
    copies: int
    first_delay: float
    step_delay: float


def sign_params(params: dict, secret: str, method: str) -> str:
    """Return Vonage's signature of ``params`` (any ``sig`` field is ignored).

    Each pair, sorted by name, is joined as ``&name=value`` with ``&`` and ``=`` in values
    replaced by ``_``. ``md5hash`` is the MD5 hex digest of that string with the secret
    appended, and the other methods are HMAC hex digests keyed with the secret.
    """
    pairs = []
    for name in sorted(params):
        if name == "sig":
            continue
        value = str(params[name]).replace("&", "_").replace("=", "_")
        pairs.append(f"&{name}={value}")
    payload = "".join(pairs)

    if method == "md5hash":
        return hashlib.md5((payload + secret).encode()).hexdigest()
    if method in SIGNATURE_METHODS:
        return hmac.new(secret.encode(), payload.encode(), method).hexdigest()
    raise ValueError(f"invalid signature method {method!r}: use one of {SIGNATURE_METHODS}")


def mask_number(number: str) -> str:
    """Mask all but the last 4 characters of a phone number for logs."""
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


def normalize_number(number: str) -> str:
    """Strip spaces and a leading ``+`` from an E.164 number."""
    return number.replace(" ", "").removeprefix("+")


def parse_basic_username(header: str | None) -> str | None:
    """Return the username of an HTTP Basic ``Authorization`` header, or None if invalid."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, _ = decoded.partition(":")
    return username if separator and username else None


def find_invalid_parameter(form: dict) -> tuple[str, str] | None:
    """Return the (status, error-text) rejection for a send with a missing or invalid field.

    NOTE: the error-text of statuses 2, 3 and 6 imitates Vonage's style but is not copied from
    real responses, so match on the status only.
    """
    for name in ("from", "to"):
        if not form.get(name):
            return "2", f"Missing {name} param"
    message_type = form.get("type", "text")
    if message_type not in ("text", "unicode", "binary"):
        return "3", "Invalid Message type"
    content_field = "body" if message_type == "binary" else "text"
    if not form.get(content_field):
        return "2", f"Missing {content_field} param"

    to = normalize_number(form["to"])
    if not to.isdigit() or len(to) > 15:
        return "3", "Invalid to param"
    if to.startswith("0"):
        return "6", "Invalid Message"  # a national number has no country prefix
    # A sender is a number of up to 15 digits or an alphanumeric ID of up to 11 characters.
    sender = form["from"].replace(" ", "")
    sender_digits = sender.removeprefix("+")
    too_long = len(sender_digits) > 15 if sender_digits.isdigit() else len(sender) > 11
    if too_long or not (sender.isascii() and sender.isprintable()):
        return "15", "Illegal Sender Address - rejected"
    return None


def split_parts(form: dict) -> list[str]:
    """Split the send's content into the parts Vonage would bill and deliver separately."""
    if form.get("type") == "binary":
        return [form["body"]]
    is_unicode = form.get("type") == "unicode"
    encoding = sms_encoding.Encoding.UCS2 if is_unicode else sms_encoding.Encoding.GSM7
    return sms_encoding.split(form["text"], encoding)


def build_receipt(form: dict, api_key: str, message_id: str, step: ReceiptStep,
                  sent_at: datetime) -> dict:
    """Build the delivery receipt fields of one part for one receipt step."""
    stamp = sent_at + timedelta(seconds=step.offset_seconds)
    receipt = {
        "msisdn": normalize_number(form["to"]),
        "to": form["from"],
        "network-code": NETWORK_CODE,
        "messageId": message_id,
        "price": MESSAGE_PRICE,
        "status": step.status,
        "scts": stamp.strftime("%y%m%d%H%M"),
        "err-code": step.err_code,
        "api-key": api_key,
        "message-timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if "client-ref" in form:
        receipt["client-ref"] = form["client-ref"]
    return receipt


def receipt_path(callback: str | None) -> str:
    """Return the path and query of ``callback``, or the default webhook path."""
    if not callback:
        return DEFAULT_RECEIPT_PATH
    parts = urlsplit(callback)
    path = "/" + parts.path.lstrip("/")
    return f"{path}?{parts.query}" if parts.query else path


def problem_body(status: int) -> dict:
    """Build an RFC 7807 error body for an HTTP error status."""
    code, title, detail = PROBLEMS[status]
    return {
        "type": f"https://developer.vonage.com/api-errors#{code}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }


class SandboxGateway:
    """HTTPS server on 127.0.0.1 that imitates Vonage's SMS API and posts delivery receipts."""

    def __init__(self, *, receipt_delay: float = 1.0, hang_seconds: float = 15.0,
                 work_dir: str | None = None, signature_secret: str | None = None,
                 signature_method: str = "md5hash") -> None:
        if signature_method not in SIGNATURE_METHODS:
            raise ValueError(
                f"invalid signature_method {signature_method!r}: use one of {SIGNATURE_METHODS}"
            )
        self.receipt_delay = receipt_delay
        self.hang_seconds = hang_seconds
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.webhook_port: int | None = None
        self.requests_received: list[dict] = []
        self._work_dir = work_dir
        self._owned_dir: str | None = None
        self._ca_path: str | None = None
        self._server_context: ssl.SSLContext | None = None
        self._server: _SandboxServer | None = None
        self._server_thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._lock = threading.RLock()
        self._next_message_id = secrets.randbits(64)
        self._attempts: dict[tuple[str, str], int] = {}
        self._balance = STARTING_BALANCE

    def start(self) -> None:
        """Start the HTTPS server on a free port of 127.0.0.1 unless it is already running."""
        with self._lock:
            if self._server is not None:
                return
            self._ensure_certificates()
            server = _SandboxServer(self, self._server_context)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1},
                name="sms-sandbox", daemon=True,
            )
            thread.start()
            self._server, self._server_thread = server, thread
            logger.info("SMS sandbox listening on https://127.0.0.1:%d", server.server_address[1])

    def stop(self) -> None:
        """Stop the server, interrupt pending receipts and remove a temporary CA directory."""
        with self._lock:
            server, thread, workers = self._server, self._server_thread, list(self._workers)
            self._server = self._server_thread = None
        if server is not None:
            server.stopped.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            logger.info("SMS sandbox stopped")
        deadline = time.monotonic() + 2
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._owned_dir is not None and self._server is None:
                shutil.rmtree(self._owned_dir, ignore_errors=True)
                self._owned_dir = self._ca_path = self._server_context = None

    @property
    def rest_host(self) -> str:
        """Host and port of the running server, as ``HttpClientOptions(rest_host=...)`` takes."""
        with self._lock:
            if self._server is None:
                raise RuntimeError("the SMS sandbox is not running: call start() first")
            return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_path(self) -> str:
        """Path of the PEM file with the CA certificate that signed the server certificate."""
        with self._lock:
            self._ensure_certificates()
            return self._ca_path

    def _ensure_certificates(self) -> None:
        if self._ca_path is not None:
            return
        directory = self._work_dir
        if directory is None:
            directory = self._owned_dir = tempfile.mkdtemp(prefix="sms-sandbox-")
        authority = trustme.CA(organization_name="smstrack SMS sandbox")
        ca_file = Path(directory) / f"sms-sandbox-ca-{secrets.token_hex(4)}.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        authority.issue_cert("127.0.0.1").configure_cert(context)
        self._ca_path, self._server_context = str(ca_file), context

    def _record_request(self, form: dict) -> None:
        with self._lock:
            self.requests_received.append(dict(form))

    def _accept_send(self, form: dict, api_key: str) -> tuple[dict, ReceiptJob | None]:
        """Build the API reply for a send and, when it is accepted, its receipt job."""
        rejection = find_invalid_parameter(form)
        to = normalize_number(form["to"])
        if rejection is None:
            rejection = SEND_REJECTIONS.get(to)
        if rejection is None and to in FIRST_ATTEMPT_REJECTIONS and self._first_attempt(form):
            rejection = FIRST_ATTEMPT_REJECTIONS[to]
        if rejection is not None:
            status, error_text = rejection
            logger.info("SMS sandbox rejected a send to %s with status %s: %s",
                        mask_number(normalize_number(form.get("to", ""))), status, error_text)
            return {"message-count": "1", "messages": [{"status": status,
                                                         "error-text": error_text}]}, None

        parts = split_parts(form)
        messages = [self._accept_part(form) for _ in parts]
        message_ids = [message["message-id"] for message in messages]
        to = normalize_number(form["to"])
        logger.info("SMS sandbox accepted a send to %s: %d part(s), message-id %s",
                    mask_number(to), len(parts), ", ".join(message_ids))
        reply = {"message-count": str(len(messages)), "messages": messages}
        return reply, self._plan_receipts(form, api_key, message_ids)

    def _first_attempt(self, form: dict) -> bool:
        """Count a send attempt for the form's client-ref; tell whether it is the first."""
        key = (form.get("to", ""), form.get("client-ref", ""))
        with self._lock:
            self._attempts[key] = self._attempts.get(key, 0) + 1
            return self._attempts[key] == 1

    def _accept_part(self, form: dict) -> dict:
        with self._lock:
            message_id = f"{self._next_message_id:016X}"
            self._next_message_id = (self._next_message_id + 1) % 2**64
            if self._balance < Decimal(MESSAGE_PRICE):
                self._balance = STARTING_BALANCE
            self._balance -= Decimal(MESSAGE_PRICE)
            balance = f"{self._balance:.8f}"
        message = {
            "to": normalize_number(form["to"]),
            "message-id": message_id,
            "status": "0",
            "remaining-balance": balance,
            "message-price": MESSAGE_PRICE,
            "network": NETWORK_CODE,
        }
        if "client-ref" in form:
            message["client-ref"] = form["client-ref"]
        return message

    def _plan_receipts(self, form: dict, api_key: str, message_ids: list[str]) -> ReceiptJob | None:
        to = normalize_number(form["to"])
        if form.get("status-report-req", "").lower() in ("0", "false"):
            return None
        port = self.webhook_port
        if port is None:
            logger.warning("SMS sandbox has no webhook_port, so it posts no receipts for %s",
                           ", ".join(message_ids))
            return None

        sent_at = datetime.now(UTC).replace(microsecond=0)
        steps = [
            [build_receipt(form, api_key, message_id, step, sent_at) for message_id in message_ids]
            for step in RECEIPT_PLANS.get(to, DELIVERED)
        ]
        path = receipt_path(form.get("callback"))
        early = to == EARLY_RECEIPT_NUMBER
        return ReceiptJob(
            url=f"http://127.0.0.1:{port}{path}",
            log_path=path.partition("?")[0],  # the query may carry a token, so logs omit it
            steps=steps,
            copies=DUPLICATE_RECEIPT_COPIES.get(to, 1),
            first_delay=0.0 if early else self.receipt_delay,
            step_delay=self.receipt_delay,
        )

    def _start_receipts(self, job: ReceiptJob, stopped: threading.Event) -> threading.Event:
        """Post the job's receipts in a daemon thread and return an event set when it ends."""
        done = threading.Event()
        worker = threading.Thread(target=self._post_receipts, args=(job, stopped, done),
                                  name="sms-sandbox-receipts", daemon=True)
        with self._lock:
            self._workers.add(worker)
        worker.start()
        return done

    def _post_receipts(self, job: ReceiptJob, stopped: threading.Event,
                       done: threading.Event) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA bundle from the environment
        try:
            for index, receipts in enumerate(job.steps):
                if stopped.wait(job.first_delay if index == 0 else job.step_delay):
                    return
                for receipt in receipts:
                    body = self._sign(receipt)
                    for _ in range(job.copies):
                        _post_with_retries(session, job, body, stopped)
        finally:
            session.close()
            done.set()
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _sign(self, receipt: dict) -> dict:
        if self.signature_secret is None:
            return receipt
        signed = dict(receipt, timestamp=str(int(time.time())), nonce=str(uuid.uuid4()))
        signed["sig"] = sign_params(signed, self.signature_secret, self.signature_method)
        return signed


def _post_with_retries(session: requests.Session, job: ReceiptJob, body: dict,
                       stopped: threading.Event) -> None:
    """POST one receipt with retries and backoff, logging a warning for each failed attempt."""
    backoff = RECEIPT_RETRY_BACKOFF_SECONDS
    for attempt in range(1, RECEIPT_POST_ATTEMPTS + 1):
        try:
            # Redirects are not followed because a redirect could lead to another host.
            response = session.post(job.url, json=body, timeout=RECEIPT_POST_TIMEOUT_SECONDS,
                                    allow_redirects=False)
        except requests.RequestException as error:
            # The error text contains the URL with its query, which may carry a token.
            problem = f"failed: {type(error).__name__}"
        else:
            if 200 <= response.status_code < 300:
                logger.debug("Posted %s receipt for message-id %s to %s", body["status"],
                             body["messageId"], job.log_path)
                return
            problem = f"returned HTTP {response.status_code}"
        logger.warning("Posting the %s receipt for message-id %s to %s %s (attempt %d of %d)",
                       body["status"], body["messageId"], job.log_path, problem, attempt,
                       RECEIPT_POST_ATTEMPTS)
        if attempt == RECEIPT_POST_ATTEMPTS or stopped.wait(backoff):
            return
        backoff *= 2


class _SandboxServer(ThreadingHTTPServer):
    """Threading HTTP server that runs each connection's TLS handshake in its own thread."""

    daemon_threads = True

    def __init__(self, gateway: SandboxGateway, context: ssl.SSLContext) -> None:
        self.gateway = gateway
        self.ssl_context = context
        self.stopped = threading.Event()
        super().__init__(("127.0.0.1", 0), _SmsApiHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which may query DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        request.settimeout(CONNECTION_TIMEOUT_SECONDS)
        connection = self.ssl_context.wrap_socket(request, server_side=True)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client already closed the connection
            connection.close()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError)):
            # Expected after a client timeout (the 0170 number): the client has gone.
            logger.info("SMS sandbox connection from %s ended early: %s", client_address[0], error)
        else:
            logger.exception("SMS sandbox failed to handle a request from %s", client_address[0])


class _SmsApiHandler(BaseHTTPRequestHandler):
    server: _SandboxServer
    server_version = "SmsSandbox/1.0"

    def log_message(self, format: str, *args) -> None:
        logger.debug("SMS sandbox %s: %s", self.client_address[0], format % args)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/sms/json":
            self._send_json(404, problem_body(404))
            return
        form = self._read_form()
        if form is None:
            return
        self.server.gateway._record_request(form)
        api_key = parse_basic_username(self.headers.get("Authorization"))
        if api_key is None:
            self._send_json(401, problem_body(401),
                            {"WWW-Authenticate": 'Basic realm="SMS sandbox"'})
            return
        self._respond_to_send(form, api_key)

    def _read_form(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send_json(400, problem_body(400))
            return None
        if length > MAX_BODY_BYTES:
            self._send_json(413, problem_body(413))
            return None
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        fields = parse_qs(body, keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}

    def _respond_to_send(self, form: dict, api_key: str) -> None:
        gateway = self.server.gateway
        to = normalize_number(form.get("to", ""))
        if to == HANG_NUMBER and self.server.stopped.wait(gateway.hang_seconds):
            return  # stopped while hanging: close without a reply
        if to == DROP_NUMBER:
            logger.info("SMS sandbox closed the connection for %s without a reply",
                        mask_number(to))
            return
        status = HTTP_FAILURES.get(to)
        if status is None and to in FIRST_ATTEMPT_HTTP_FAILURES and gateway._first_attempt(form):
            status = FIRST_ATTEMPT_HTTP_FAILURES[to]
        if status is not None:
            self._send_json(status, problem_body(status))
            return

        reply, job = gateway._accept_send(form, api_key)
        if job is not None:
            done = gateway._start_receipts(job, self.server.stopped)
            if to == EARLY_RECEIPT_NUMBER:
                done.wait(EARLY_RECEIPT_MAX_WAIT_SECONDS)
        self._send_json(200, reply)

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        content_type = "application/json" if status == 200 else "application/problem+json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
