"""smstrack: send SMS through Vonage and follow each one to its delivery receipt.

`create_app()` reads the built-in defaults, then the environment and `.env`, then an
optional test mapping, checks the result, and registers the blueprints.
"""

import logging
import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import click
import phonenumbers
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from dotenv import load_dotenv
from flask import Flask, abort, jsonify, render_template, request
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFError, CSRFProtect
from limits.errors import ConfigurationError as LimitsConfigurationError
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

import auth
import forms
import receipts
import sending
import views
from models import db
from sandbox import SIGNATURE_METHODS
from sending import SANDBOX_CALLBACK_BASE

# Every setting the app reads, with its default. The type of the default decides how
# an environment value is parsed; None means "a string, unset by default".
DEFAULTS = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "VONAGE_API_KEY": None,
    "VONAGE_API_SECRET": None,
    "VONAGE_SIGNATURE_SECRET": None,
    "VONAGE_SIGNATURE_METHOD": "md5hash",
    "SMS_SENDER": None,
    "PUBLIC_URL": None,
    "DEFAULT_REGION": "US",
    "WEBHOOK_TOKEN": None,
    "SEND_RATE_LIMIT": "30 per minute",
    "LOGIN_RATE_LIMIT": "10 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "VONAGE_SIGNATURE_MAX_AGE": 259200,
    "TRUSTED_PROXY_HOPS": 0,
    "MAX_CONTENT_LENGTH": 65536,
    "MAX_SEGMENTS": 6,
    "VONAGE_TIMEOUT": 10,
    "RECEIPT_OVERDUE_AFTER": 3600,
    "SANDBOX_RECEIPT_DELAY": 1.0,
    # Seconds the sandbox's hanging number waits before it replies; 0 means
    # VONAGE_TIMEOUT + 5, just past the client's timeout.
    "SANDBOX_HANG_SECONDS": 0.0,
    "LOG_LEVEL": "INFO",
    "MESSAGES_PER_PAGE": 25,
}
SANDBOX_SENDER = "smstrack"
# Lower bounds of numeric settings; below them the app cannot work as documented.
MINIMUMS = {
    "VONAGE_TIMEOUT": 1,
    "MAX_SEGMENTS": 1,
    "MESSAGES_PER_PAGE": 1,
    "SANDBOX_RECEIPT_DELAY": 0,
    "SANDBOX_HANG_SECONDS": 0,
    "RECEIPT_OVERDUE_AFTER": 1,
    "VONAGE_SIGNATURE_MAX_AGE": 1,
    "TRUSTED_PROXY_HOPS": 0,
    # A receipt form body is well under 1 KiB; the send form with 6 Unicode segments
    # is about 3 KiB.
    "MAX_CONTENT_LENGTH": 8192,
}
RECEIPT_PATH = "/webhooks/delivery-receipt"
# Vonage rejects a `callback` longer than this (vonage-sms 1.2.0 validates it too).
MAX_CALLBACK_LENGTH = 100
# Only this origin may load scripts, styles and frames; no inline code at all.
# Views behind HTML forms: they take URL-encoded bodies only.
FORM_ENDPOINTS = frozenset({"auth.login", "auth.logout", "auth.setup", "messages.create"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

csrf = CSRFProtect()
migrate = Migrate(render_as_batch=True, compare_type=True)
log = logging.getLogger("smstrack")


class ConfigError(click.ClickException):
    """A missing or invalid setting; the message names the setting and the fix."""


def create_app(test_config=None, instance_path=None):
    """Create and configure the app.

    Tests pass `test_config`; the `.env` file is then not read, so a developer's real
    credentials can never reach a test run. `instance_path` defaults to `instance/`
    beside this file and contains the SQLite database and the sandbox's secret key.
    """
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    if test_config is None:
        load_dotenv(Path(app.root_path) / ".env")
    app.config.update(read_settings(os.environ))
    if test_config is not None:
        app.config.update(test_config)
    check_settings(app)

    register_logging(app)
    register_database(app)
    register_extensions(app)
    register_security(app)
    register_blueprints(app)
    register_error_handlers(app)
    if not app.testing and serving():
        check_schema(app)
    return app


def serving():
    """Tell whether the app is created to serve requests (gunicorn or `flask run`).

    Other `flask` commands, such as `db upgrade` or `create-user`, skip the startup
    checks: the schema may not exist yet while they run.
    """
    context = click.get_current_context(silent=True)
    if context is None:
        return True
    root = context.find_root()
    return getattr(root, "invoked_subcommand", None) == "run"


def check_schema(app):
    """Warn when the database is behind the migrations; else show the setup link if needed."""
    with app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config())
        head = script.get_current_head()
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        log.error(
            "The database schema is at revision %s but this code needs %s: "
            "run 'flask --app app db upgrade' before starting the app.",
            current,
            head,
        )
        return
    with app.app_context():
        sending.settle_interrupted_sends()
    auth.announce_setup(app)


def read_settings(environ):
    """Return the defaults overridden by the environment, each parsed to its type."""
    settings = dict(DEFAULTS)
    for name, default in DEFAULTS.items():
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        if isinstance(default, bool) or default is None or isinstance(default, str):
            settings[name] = raw
            continue
        try:
            settings[name] = type(default)(raw)
        except ValueError:
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise ConfigError(f"{name}={raw!r} is invalid: expected {kind}") from None
    return settings


def check_settings(app):
    """Fill in derived settings and reject combinations that cannot work."""
    config = app.config
    has_key = bool(config.get("VONAGE_API_KEY"))
    has_secret = bool(config.get("VONAGE_API_SECRET"))
    if has_key != has_secret:
        raise ConfigError(
            "Set both VONAGE_API_KEY and VONAGE_API_SECRET to use Vonage, "
            "or neither to use the sandbox"
        )
    config["SANDBOX"] = not has_key

    if not config.get("SECRET_KEY"):
        if not config["SANDBOX"]:
            raise ConfigError(
                "SECRET_KEY is missing: with Vonage credentials set, set SECRET_KEY to a long "
                "random string (for example the output of: python -c 'import secrets; "
                "print(secrets.token_hex(32))')"
            )
        config["SECRET_KEY"] = load_instance_secret(Path(app.instance_path) / "secret_key")

    if not config.get("SMS_SENDER"):
        if not config["SANDBOX"]:
            raise ConfigError("SMS_SENDER is missing: set the sender id or number to send from")
        config["SMS_SENDER"] = SANDBOX_SENDER

    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'smstrack.db'}"
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]

    for name, minimum in MINIMUMS.items():
        if config[name] < minimum:
            raise ConfigError(f"{name}={config[name]} is invalid: it must be at least {minimum}")

    region = config["DEFAULT_REGION"] = str(config["DEFAULT_REGION"]).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"DEFAULT_REGION={region!r} is invalid: use a two-letter country code such as US or GB"
        )

    try:
        make_url(config["SQLALCHEMY_DATABASE_URI"]).get_dialect()
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        raise ConfigError(
            "DATABASE_URL is invalid: use sqlite:///path/to/file.db or "
            f"postgresql+psycopg://user:password@host/database ({error})"
        ) from None

    method = config["VONAGE_SIGNATURE_METHOD"] = config["VONAGE_SIGNATURE_METHOD"].lower()
    if method not in SIGNATURE_METHODS:
        raise ConfigError(
            f"VONAGE_SIGNATURE_METHOD={method!r} is invalid: use one of "
            + ", ".join(SIGNATURE_METHODS)
        )

    config["RECEIPT_CALLBACK_URL"] = build_callback_url(config)
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_HTTPONLY"] = True
    public_scheme = urlsplit(config.get("PUBLIC_URL") or "").scheme.lower()
    config["SESSION_COOKIE_SECURE"] = public_scheme == "https"
    # A CSRF token lives as long as the session that it is bound to: a form left open
    # for hours still submits.
    config["WTF_CSRF_TIME_LIMIT"] = None
    config["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    config["REMEMBER_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"]


def build_callback_url(config):
    """Return the per-message receipt URL built from PUBLIC_URL, or None without it.

    With WEBHOOK_TOKEN set the URL carries it as `t`, so Vonage sends it back.
    """
    public_url = config.get("PUBLIC_URL")
    if not public_url:
        if config["SANDBOX"]:
            # The sandbox gets a loopback callback; the SDK checks its length too.
            check_callback_length(SANDBOX_CALLBACK_BASE + RECEIPT_PATH + token_query(config))
        return None

    parts = urlsplit(public_url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"PUBLIC_URL={public_url!r} is invalid: expected a URL such as "
            "https://example.ngrok.app"
        )
    callback = public_url.rstrip("/") + RECEIPT_PATH + token_query(config)
    check_callback_length(callback)
    return callback


def check_callback_length(callback):
    if len(callback) > MAX_CALLBACK_LENGTH:
        raise ConfigError(
            f"PUBLIC_URL or WEBHOOK_TOKEN is too long: the receipt URL built from them has "
            f"{len(callback)} characters and Vonage accepts at most {MAX_CALLBACK_LENGTH}; "
            "shorten the token or the URL"
        )


def token_query(config):
    token = config.get("WEBHOOK_TOKEN")
    return "?" + urlencode({"t": token}) if token else ""


def load_instance_secret(path):
    """Return the key stored at `path`, creating it once; every worker reads the same one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass

    # Write a complete file under a temporary name, then link it into place: the
    # link fails if another process won the race, and then its key is used.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return path.read_text().strip()


def register_logging(app):
    level = str(app.config["LOG_LEVEL"]).upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"LOG_LEVEL={level!r} is invalid: use DEBUG, INFO, WARNING or ERROR")
    log.setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDK logs request headers, Basic auth included, at DEBUG: keep it quieter.
    logging.getLogger("vonage").setLevel(logging.WARNING)
    # The development server logs each request line; a receipt's query string carries
    # a phone number and, with WEBHOOK_TOKEN, the token.
    request_log = logging.getLogger("werkzeug")
    if not any(isinstance(item, QueryStringFilter) for item in request_log.filters):
        request_log.addFilter(QueryStringFilter())


class QueryStringFilter(logging.Filter):
    """Remove query strings and setup tokens from the request lines of a log record."""

    QUERY = re.compile(r"\?[^\s\"]*")
    SETUP_TOKEN = re.compile(r"/setup/[^\s\"?]+")

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(item) for item in record.args)
        return True

    @classmethod
    def redact(cls, item):
        """Drop the query string and the setup token from a request line."""
        if not isinstance(item, str):
            return item
        return cls.SETUP_TOKEN.sub("/setup/…", cls.QUERY.sub("", item))


@event.listens_for(Engine, "connect")
def configure_sqlite(dbapi_connection, connection_record):
    """Turn on WAL and a busy timeout so that a webhook and a send can share SQLite."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def register_database(app):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # Several gunicorn workers each hold a pool: keep it small, and drop
        # connections that the server or a proxy closed while idle.
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS",
            {"pool_size": 5, "max_overflow": 5, "pool_pre_ping": True, "pool_recycle": 1800},
        )
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path) / "migrations"))


def register_extensions(app):
    # First, so that an anonymous request is sent to sign in before any other check.
    app.before_request(auth.require_login)
    csrf.init_app(app)
    csrf.exempt(receipts.bp)
    auth.login_manager.init_app(app)
    try:
        auth.limiter.init_app(app)
    except LimitsConfigurationError as error:
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI={app.config['RATELIMIT_STORAGE_URI']!r} is invalid: "
            f"{error}; use memory:// or redis://host:6379/0"
        ) from None


def register_security(app):
    """Trust the configured proxies and set the security headers."""
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    @app.before_request
    def check_request_body():
        """Reject bodies over the limit on every route, and form posts in other encodings.

        Flask enforces MAX_CONTENT_LENGTH only where a view reads the body. The pages
        post their forms URL-encoded, and JSON or multipart values (numbers, files)
        would reach fields that expect text.
        """
        declared = request.content_length
        if declared is not None and declared > app.config["MAX_CONTENT_LENGTH"]:
            abort(413)
        if request.method == "POST" and request.endpoint in FORM_ENDPOINTS:
            if request.mimetype != "application/x-www-form-urlencoded":
                abort(415, "Send the form as application/x-www-form-urlencoded, as the page does.")

    @app.after_request
    def set_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    config = app.config
    receipts_authenticated = config.get("VONAGE_SIGNATURE_SECRET") or config.get("WEBHOOK_TOKEN")
    if not config["SANDBOX"] and not receipts_authenticated:
        log.warning(
            "Receipts are not authenticated: anyone who finds the webhook URL can post "
            "receipts. Set VONAGE_SIGNATURE_SECRET (signed webhooks) or WEBHOOK_TOKEN."
        )


def register_blueprints(app):
    app.register_blueprint(views.bp)
    app.register_blueprint(receipts.bp)
    app.register_blueprint(auth.bp)
    app.cli.add_command(auth.create_user_command)

    @app.get("/livez")
    def livez():
        return {"status": "ok"}

    @app.get("/healthz")
    def healthz():
        """Check the database; report the schema revision (None before `db upgrade`)."""
        try:
            with db.engine.connect() as connection:
                revision = MigrationContext.configure(connection).get_current_revision()
        except SQLAlchemyError as error:
            log.error("Health check failed: database unreachable (%s)", type(error).__name__)
            return {"status": "error", "database": "unreachable"}, 503
        return {
            "status": "ok",
            "database": "ok",
            "revision": revision,
            "sandbox": app.config["SANDBOX"],
        }

    @app.context_processor
    def inject_mode():
        return {"sandbox": app.config["SANDBOX"]}


def wants_json():
    if request.path.startswith("/webhooks/") or request.path in ("/healthz", "/livez"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def register_error_handlers(app):
    @app.errorhandler(429)
    def handle_rate_limit(error):
        log.warning(
            "Rate limit %s hit on %s %s from %s (account %s)",
            error.description,
            request.method,
            request.path,
            request.remote_addr,
            auth.current_user.get_id(),
        )
        error.description = (
            f"Too many attempts ({error.description}). Wait a minute, then try again."
        )
        return handle_http_error(error)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error):
        """Show the form again, with what was typed, instead of a bare 400."""
        log.warning("CSRF check failed on %s from %s: %s", request.path, request.remote_addr,
                    error.description)
        problem = (
            "The form's security token is missing or no longer valid, for example because "
            "you signed out meanwhile. Check the fields and submit again."
        )
        if request.endpoint == "messages.create":
            form = forms.SendForm(formdata=request.form)
            if not form.idempotency_key.data:
                form.idempotency_key.data = forms.new_idempotency_key()
            return render_template("messages/new.html", form=form, form_problem=problem), 400
        if request.endpoint == "auth.login":
            form = auth.LoginForm(formdata=request.form)
            return render_template("auth/login.html", form=form, form_problem=problem), 400
        error.description = problem
        return handle_http_error(error)

    @app.errorhandler(HTTPException)
    def handle_http_error(error):
        if wants_json():
            return jsonify(error=error.name, detail=error.description), error.code
        return render_template("error.html", error=error), error.code

    @app.errorhandler(Exception)
    def handle_unexpected_error(error):
        db.session.rollback()
        log.exception("Unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return jsonify(error="Internal Server Error", detail="The error was logged."), 500
        return render_template("error.html", error=None), 500
