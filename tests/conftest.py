"""Shared fixtures: a fresh app and database per test, a live server, and Chromium."""

import itertools
import os
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from app import DEFAULTS, create_app
from auth import create_user
from models import Sms, SmsPart, Status, User, db
from pg_server import PostgresServer, find_bindir

# The suite must never pick up a developer's real settings (credentials above all),
# so every setting the app reads is removed from the environment.
for _name in DEFAULTS:
    os.environ.pop(_name, None)

TEST_SETTINGS = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "SANDBOX_RECEIPT_DELAY": 0.05,
    "VONAGE_TIMEOUT": 1,
    "LOG_LEVEL": "DEBUG",
}

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEBIAN_CHROMIUM = "/usr/bin/chromium"
# Numbers PostgreSQL databases uniquely across the whole run.
_database_numbers = itertools.count()


def skip_suite(reason):
    """Skip the current test's suite, or fail it when REQUIRE_ALL_SUITES=1."""
    if os.environ.get("REQUIRE_ALL_SUITES") == "1":
        pytest.fail(f"REQUIRE_ALL_SUITES=1 but this suite cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Start one headless Chromium for the session (Debian's, else Playwright's own)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        skip_suite("the playwright package is not installed (pip install -r requirements-dev.txt)")

    executable = DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, headless=True
            )
        except Error as error:
            skip_suite(
                "no Chromium found: install Debian's package (apt-get install chromium) "
                f"or run 'playwright install chromium' ({error.message.splitlines()[0]})"
            )
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """Open a page in a fresh browser context, closed after the test."""
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def postgres_server():
    """Start one throwaway PostgreSQL server for the whole run."""
    bindir = find_bindir()
    if bindir is None:
        skip_suite("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        server.start()
    except (OSError, subprocess.CalledProcessError) as error:
        server.stop()
        details = getattr(error, "stderr", "") or error
        skip_suite(f"the throwaway PostgreSQL server did not start: {details}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request, tmp_path):
    """Return a factory of empty databases of one kind: SQLite files or PostgreSQL."""
    names = itertools.count()

    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'test-{next(names)}.db'}"

    server = request.getfixturevalue("postgres_server")
    prefix = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return lambda: server.create_database(f"{prefix}_{next(_database_numbers)}_{next(names)}")


@pytest.fixture
def make_app(new_database):
    """Return a factory of apps, each on its own new database; stops their sandboxes."""
    created = []

    def factory(**settings):
        config = {**TEST_SETTINGS, "DATABASE_URL": new_database(), **settings}
        new_app = create_app(config)
        with new_app.app_context():
            db.create_all()
        created.append(new_app)
        return new_app

    yield factory
    for new_app in created:
        gateway, _owner = new_app.extensions.get("smstrack_sandbox", (None, None))
        if gateway is not None:
            gateway.stop()
        with new_app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


TEST_EMAIL = "ada@example.com"
TEST_PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(app):
    """Create the team account the signed-in fixtures use; return its id."""
    with app.app_context():
        return create_user(TEST_EMAIL, TEST_PASSWORD).id


def sign_in(client, email=TEST_EMAIL, password=TEST_PASSWORD, next_url=None):
    """Sign in through the real login form; return the response."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"csrf_token": token, "email": email, "password": password})


@pytest.fixture
def anonymous_client(app):
    return app.test_client()


def signed_in_client(app):
    """Return a test client signed in as the test account, creating it when missing."""
    with app.app_context():
        if db.session.scalar(select(User.id).where(User.email == TEST_EMAIL)) is None:
            create_user(TEST_EMAIL, TEST_PASSWORD)
    signed_in = app.test_client()
    response = sign_in(signed_in)
    assert response.status_code == 302, response.get_data(as_text=True)
    return signed_in


@pytest.fixture
def client(app, user):
    return signed_in_client(app)


@contextmanager
def serve(app):
    """Serve the app on a real loopback port (the sandbox posts receipts to it)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    with serve(app) as base_url:
        yield base_url


def form_tokens(html):
    """Return the hidden csrf_token and idempotency_key of a rendered send form."""
    tokens = {}
    for name in ("csrf_token", "idempotency_key"):
        match = re.search(rf'name="{name}"[^>]*value="([^"]+)"', html) or re.search(
            rf'value="([^"]+)"[^>]*name="{name}"', html
        )
        assert match, f"the form has no {name} field"
        tokens[name] = match.group(1)
    return tokens


def store_submitted_message(message_ids, recipient="14155550100", text="Hello", client_ref=None):
    """Add a message and its parts as a successful send reply leaves them; no commit.

    Call it inside an app context; returns the message's id.
    """
    sms = Sms(
        recipient=recipient,
        sender="smstrack",
        text=text,
        encoding="text",
        segments=max(len(message_ids), 1),
        send_outcome=Status.SUBMITTED,
        status=Status.SUBMITTED,
    )
    if client_ref:
        sms.client_ref = client_ref
    db.session.add(sms)
    db.session.flush()
    for position, message_id in enumerate(message_ids):
        db.session.add(
            SmsPart(
                sms_id=sms.id,
                position=position,
                message_id=message_id,
                send_status=Status.SUBMITTED,
                status=Status.SUBMITTED,
            )
        )
    return sms.id


@pytest.fixture
def add_message(app):
    """Store a submitted message with the given part ids, as a send reply would."""

    def add(*message_ids, recipient="14155550100", text="Hello", client_ref=None):
        with app.app_context():
            sms_id = store_submitted_message(message_ids, recipient, text, client_ref)
            db.session.commit()
            return sms_id

    return add


@contextmanager
def signed_in_server(app):
    """Serve the app on a loopback port with a signed-in `requests` session (like a
    browser: cookies kept, no proxies from the environment); yield both."""
    with app.app_context():
        if db.session.scalar(select(User.id).where(User.email == TEST_EMAIL)) is None:
            create_user(TEST_EMAIL, TEST_PASSWORD)
    with serve(app) as base_url:
        session = requests.Session()
        session.trust_env = False
        page = session.get(f"{base_url}/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        response = session.post(
            f"{base_url}/login",
            data={"csrf_token": token, "email": TEST_EMAIL, "password": TEST_PASSWORD},
            timeout=10,
        )
        assert response.url == f"{base_url}/", "sign-in failed"
        try:
            yield base_url, session
        finally:
            session.close()
