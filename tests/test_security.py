"""Access control, receipt authenticity, rate limits, headers and logs."""

import io
import json
import logging
import re
import threading
import time
from pathlib import Path

import flask_migrate
import pytest
import requests
from sqlalchemy import func, select

from app import ConfigError, create_app
from auth import create_user, setup_token
from conftest import (
    TEST_EMAIL,
    TEST_PASSWORD,
    TEST_SETTINGS,
    form_tokens,
    serve,
    sign_in,
    signed_in_client,
)
from models import Receipt, Sms, User, db
from sandbox import SIGNATURE_METHODS, sign_params

URL = "/webhooks/delivery-receipt"
SIGNED_SAMPLE = json.loads((Path(__file__).parent / "data" / "signed-receipt.json").read_text())
SECRET = "test-signature-secret-0123456789"


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def fresh_receipt(**extra):
    fields = {
        "msisdn": "14155550100",
        "to": "smstrack",
        "messageId": "0A00000000000001",
        "status": "delivered",
        "err-code": "0",
        "api-key": "abcd1234",
        "message-timestamp": "2026-12-04 12:00:05",
        "client-ref": "sms-42&x=1",
        "timestamp": str(int(time.time())),
        "nonce": "6f1c2a9e-0d1b-4c5e-9a77-1d2e3f4a5b6c",
    }
    fields.update(extra)
    return fields


def signed(fields, method, secret=SECRET):
    return {**fields, "sig": sign_params(fields, secret, method)}


def post_receipt(client, fields, how):
    if how == "query":
        return client.get(URL, query_string=fields)
    if how == "form":
        return client.post(URL, data=fields)
    return client.post(URL, json=fields)


# Sign-in ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/messages/new"), ("GET", "/messages/1"), ("POST", "/messages")],
)
def test_pages_need_sign_in(anonymous_client, method, path):
    response = anonymous_client.open(path, method=method)

    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    assert path.split("/")[-1] in response.location


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/static/css/app.css", "/login"])
def test_public_paths_open(anonymous_client, path):
    assert anonymous_client.get(path).status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\\\evil.example", "javascript:x"]
)
def test_next_to_other_site_ignored(app, user, target):
    client = app.test_client()

    response = sign_in(client, next_url=target)

    assert response.status_code == 302
    assert response.location == "/"


def test_next_on_same_site_followed(app, user):
    response = sign_in(app.test_client(), next_url="/messages/new")

    assert response.location == "/messages/new"


def test_wrong_password_rejected(app, user, caplog):
    with caplog.at_level(logging.WARNING, logger="smstrack"):
        response = sign_in(app.test_client(), password="wrong password here")

    assert response.status_code == 401
    assert "The email or password is wrong." in response.get_data(as_text=True)
    assert any("Failed sign-in from" in record.getMessage() for record in caplog.records)


def test_logout_needs_post_with_csrf(app, client):
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200

    token = form_tokens(client.get("/messages/new").get_data(as_text=True))["csrf_token"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_message_records_sender(app, client):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))
    client.post("/messages", data={**tokens, "to": "+14155550199", "text": "Hi"})

    with app.app_context():
        sms = db.session.scalar(select(Sms))
        assert sms.user.email == TEST_EMAIL
    assert TEST_EMAIL in client.get("/").get_data(as_text=True)
    assert TEST_EMAIL in client.get(f"/messages/{sms.id}").get_data(as_text=True)


# First-account setup -------------------------------------------------------------


def setup_fields(client, token, **fields):
    page = client.get(f"/setup/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return {"csrf_token": csrf, **fields}


def test_setup_link_works_once(app):
    client = app.test_client()
    token = setup_token(app)
    fields = setup_fields(
        client, token, email="first@example.com", password=TEST_PASSWORD, confirm=TEST_PASSWORD
    )

    response = client.post(f"/setup/{token}", data=fields)

    assert response.status_code == 302
    assert count(app, User) == 1
    assert client.get("/").status_code == 200
    assert client.get(f"/setup/{token}").status_code == 404
    assert app.test_client().get(f"/setup/{token}").status_code == 404


@pytest.mark.parametrize("token", ["", "wrong", "0" * 32])
def test_setup_needs_the_token(app, token):
    response = app.test_client().get(f"/setup/{token}")

    assert response.status_code == 404


def test_setup_rejects_weak_password(app):
    client = app.test_client()
    token = setup_token(app)
    fields = setup_fields(
        client, token, email="first@example.com", password="short", confirm="short"
    )

    response = client.post(f"/setup/{token}", data=fields)

    assert response.status_code == 200
    assert "too short" in response.get_data(as_text=True)
    assert count(app, User) == 0


def test_setup_link_printed_at_startup(new_database, capsys):
    config = {**TEST_SETTINGS, "DATABASE_URL": new_database()}
    with create_app(config).app_context():
        flask_migrate.upgrade()

    app = create_app({**config, "TESTING": False})

    assert f"/setup/{setup_token(app)}" in capsys.readouterr().err
    with app.app_context():
        db.engine.dispose()


def test_startup_warns_when_schema_behind(new_database, caplog):
    config = {**TEST_SETTINGS, "DATABASE_URL": new_database(), "TESTING": False}

    with caplog.at_level(logging.ERROR, logger="smstrack"):
        app = create_app(config)

    assert any("db upgrade" in record.getMessage() for record in caplog.records)
    with app.app_context():
        db.engine.dispose()


# flask create-user -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("short\nshort\n", "too short"),
        (f"{TEST_PASSWORD}\n{TEST_PASSWORD}x\n", "differ"),
        ("aaaaaaaaaaaaaaaa\naaaaaaaaaaaaaaaa\n", "too few characters"),
        ("bob.builder-2026\nbob.builder-2026\n", "contains the email"),
    ],
)
def test_create_user_rejects(app, stdin, message):
    runner = app.test_cli_runner()

    result = runner.invoke(args=["create-user", "bob.builder@example.com"], input=stdin)

    assert result.exit_code != 0
    assert message in result.output
    assert count(app, User) == 0


def test_create_user_and_duplicate(app):
    runner = app.test_cli_runner()
    stdin = f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n"

    first = runner.invoke(args=["create-user", "Bob@Example.com"], input=stdin)
    second = runner.invoke(args=["create-user", "bob@example.com"], input=stdin)

    assert first.exit_code == 0, first.output
    assert "Created the account bob@example.com" in first.output
    assert second.exit_code != 0
    assert "already exists" in second.output
    with app.app_context():
        stored = db.session.scalar(select(User))
        assert stored.password_hash.startswith("scrypt:")
        assert TEST_PASSWORD not in stored.password_hash


# Rate limits ---------------------------------------------------------------------


def test_eleventh_login_gets_429(app, user, caplog):
    client = app.test_client()
    for _attempt in range(10):
        assert sign_in(client, password="wrong password here").status_code == 401

    with caplog.at_level(logging.INFO):
        response = sign_in(client, password="wrong password here")

    assert response.status_code == 429
    assert "Too Many Requests" in response.get_data(as_text=True)


def test_login_limit_per_account(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1)
    with app.app_context():
        create_user(TEST_EMAIL, TEST_PASSWORD)
    client = app.test_client()
    for attempt in range(10):
        headers = {"X-Forwarded-For": f"198.51.100.{attempt}"}
        page = client.get("/login", headers=headers).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        data = {"csrf_token": csrf, "email": TEST_EMAIL, "password": "wrong password here"}
        assert client.post("/login", data=data, headers=headers).status_code == 401

    data["password"] = TEST_PASSWORD
    response = client.post("/login", data=data, headers={"X-Forwarded-For": "198.51.100.77"})

    assert response.status_code == 429


def test_proxy_hops_limit_per_client_address(make_app):
    """Behind a trusted proxy the limit counts the forwarded client address."""
    app = make_app(TRUSTED_PROXY_HOPS=1)
    client = app.test_client()
    for attempt in range(10):
        response = sign_in(client, email=f"u{attempt}@example.com", password="wrong password")
        assert response.status_code == 401

    assert sign_in(client, email="u10@example.com", password="wrong").status_code == 429

    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    assert sign_in(other, email="u11@example.com", password="wrong").status_code == 401


def test_send_rate_limit_per_user(make_app):
    app = make_app(SEND_RATE_LIMIT="2 per minute")
    client = signed_in_client(app)
    statuses = []
    for _attempt in range(3):
        tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))
        response = client.post("/messages", data={**tokens, "to": "+14155550199", "text": "Hi"})
        statuses.append(response.status_code)

    assert statuses == [302, 302, 429]
    assert count(app, Sms) == 2


# Headers, cookies and body size ---------------------------------------------------


def test_security_headers(client):
    response = client.get("/")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_code(client):
    for path in ("/", "/messages/new", "/login"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page
        assert "style=" not in page
        assert " on" + "click=" not in page


@pytest.mark.parametrize(("public_url", "secure"), [(None, False), ("https://t.example", True)])
def test_session_cookie_flags(make_app, public_url, secure):
    app = make_app(PUBLIC_URL=public_url)
    client = app.test_client()

    cookie = client.get("/login").headers.get("Set-Cookie", "")

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_body_over_limit_gets_413(app, client):
    big = {"messageId": "0A00000000000001", "status": "delivered", "pad": "x" * 70000}

    assert client.post(URL, data=big).status_code == 413
    assert client.post("/messages", data={"text": "x" * 70000}).status_code == 413
    assert count(app, Receipt) == 0


# Receipt authenticity ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["query", "form", "json"])
@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_signed_receipt_accepted(make_app, method, how):
    app = make_app(VONAGE_SIGNATURE_SECRET=SECRET, VONAGE_SIGNATURE_METHOD=method)

    response = post_receipt(app.test_client(), signed(fresh_receipt(), method), how)

    assert response.status_code == 204
    assert count(app, Receipt) == 1


@pytest.mark.parametrize("how", ["query", "form", "json"])
@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_tampered_receipt_rejected(make_app, method, how, caplog):
    app = make_app(VONAGE_SIGNATURE_SECRET=SECRET, VONAGE_SIGNATURE_METHOD=method)
    client = app.test_client()
    good = signed(fresh_receipt(), method)
    stale = signed(fresh_receipt(timestamp=str(int(time.time()) - 300000)), method)
    cases = {
        "changed field": {**good, "status": "failed"},
        "missing sig": {name: value for name, value in good.items() if name != "sig"},
        "stale timestamp": stale,
        "wrong secret": signed(fresh_receipt(), method, secret="another-secret"),
    }

    with caplog.at_level(logging.WARNING, logger="smstrack"):
        for name, fields in cases.items():
            response = post_receipt(client, fields, how)
            assert response.status_code == 401, name
            assert response.is_json, name

    assert count(app, Receipt) == 0
    assert sum("Rejected receipt" in record.getMessage() for record in caplog.records) == 4
    assert not any(SECRET in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_uppercase_signature_accepted(make_app, method):
    app = make_app(VONAGE_SIGNATURE_SECRET=SECRET, VONAGE_SIGNATURE_METHOD=method)
    fields = signed(fresh_receipt(), method)
    fields["sig"] = fields["sig"].upper()

    assert app.test_client().post(URL, data=fields).status_code == 204


@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_vonage_signed_sample_accepted(make_app, method):
    """The sample's signatures were computed outside this project (HMAC ones by the SDK)."""
    ten_years = 10 * 365 * 86400
    app = make_app(
        VONAGE_SIGNATURE_SECRET=SIGNED_SAMPLE["secret"],
        VONAGE_SIGNATURE_METHOD=method,
        VONAGE_SIGNATURE_MAX_AGE=ten_years,
    )
    fields = {**SIGNED_SAMPLE["params"], "sig": SIGNED_SAMPLE["sig"][method]}

    assert app.test_client().post(URL, json=fields).status_code == 204
    assert count(app, Receipt) == 1


def test_webhook_token_required(make_app):
    app = make_app(WEBHOOK_TOKEN="s3cret-token")
    client = app.test_client()
    fields = fresh_receipt()

    assert client.post(URL, data=fields).status_code == 401
    assert client.post(URL + "?t=wrong", data=fields).status_code == 401
    assert count(app, Receipt) == 0
    assert client.post(URL + "?t=s3cret-token", data=fields).status_code == 204
    assert count(app, Receipt) == 1


def test_token_and_signature_together(make_app):
    app = make_app(WEBHOOK_TOKEN="tok", VONAGE_SIGNATURE_SECRET=SECRET)
    fields = signed(fresh_receipt(), "md5hash")

    assert app.test_client().post(URL + "?t=tok", json=fields).status_code == 204


def test_other_api_key_rejected(make_app):
    app = make_app(
        VONAGE_API_KEY="abcd1234", VONAGE_API_SECRET="s3cret", SMS_SENDER="Acme"
    )
    client = app.test_client()

    assert client.post(URL, data=fresh_receipt(**{"api-key": "ffff0000"})).status_code == 401
    assert count(app, Receipt) == 0
    assert client.post(URL, data=fresh_receipt()).status_code == 204


def test_unauthenticated_receipts_warned(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="smstrack"):
        make_app(VONAGE_API_KEY="abcd1234", VONAGE_API_SECRET="s3cret", SMS_SENDER="Acme")

    assert any("not authenticated" in record.getMessage() for record in caplog.records)


def test_logs_hold_no_secret(make_app, caplog):
    app = make_app(WEBHOOK_TOKEN="tok-XYZ-123", VONAGE_SIGNATURE_SECRET=SECRET)
    client = signed_in_client(app)

    with caplog.at_level(logging.DEBUG):
        client.post(URL + "?t=tok-XYZ-123", data=signed(fresh_receipt(), "md5hash"))
        client.post(URL + "?t=bad", data=fresh_receipt())
        tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))
        client.post("/messages", data={**tokens, "to": "+14155550199", "text": "Hi"})

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("tok-XYZ-123", SECRET, TEST_PASSWORD, app.config["SECRET_KEY"]):
        assert secret not in logged
    info = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]
    assert not any("14155550199" in line or "14155550100" in line for line in info)


# Found by an adversarial pass ---------------------------------------------------------


def test_sandbox_token_too_long_rejected(make_app):
    with pytest.raises(ConfigError, match="WEBHOOK_TOKEN is too long"):
        make_app(WEBHOOK_TOKEN="x" * 64)


def test_callback_token_url_encoded(make_app):
    app = make_app(PUBLIC_URL="https://t.example", WEBHOOK_TOKEN="Zm9v+YmFy/YmF6=")

    callback = app.config["RECEIPT_CALLBACK_URL"]

    assert callback == "https://t.example/webhooks/delivery-receipt?t=Zm9v%2BYmFy%2FYmF6%3D"


def test_uppercase_https_sets_secure_cookie(make_app):
    app = make_app(PUBLIC_URL="HTTPS://t.example")

    cookie = app.test_client().get("/login").headers.get("Set-Cookie", "")

    assert "Secure" in cookie


@pytest.mark.parametrize("target", ["/%0d%0aSet-Cookie:x=1", "/messages%09/new", "/%00x"])
def test_next_with_control_characters_ignored(app, user, target):
    response = sign_in(app.test_client(), next_url=target)

    assert response.status_code == 302
    assert response.location == "/"


@pytest.mark.parametrize("path", ["/login", "/messages"])
def test_json_form_post_is_415(app, client, path):
    token = form_tokens(client.get("/messages/new").get_data(as_text=True))["csrf_token"]

    response = client.post(
        path,
        json={"email": TEST_EMAIL, "password": TEST_PASSWORD, "to": 1, "text": 5},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 415


def test_multipart_login_is_415(app, user):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    response = client.post(
        "/login",
        data={"csrf_token": token, "email": (io.BytesIO(b"x"), "e.txt"), "password": "p"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 415


def test_missing_csrf_keeps_typed_text(app, client):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))

    response = client.post(
        "/messages",
        data={
            "to": "+14155550199",
            "text": "Keep me",
            "idempotency_key": tokens["idempotency_key"],
        },
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "security token is missing or no longer valid" in page
    assert "Keep me</textarea>" in page
    assert count(app, Sms) == 0


def test_get_with_large_body_is_413(client):
    response = client.get("/", data="x" * 70000, content_type="text/plain")

    assert response.status_code == 413


def test_signed_field_name_with_separator_rejected(make_app):
    app = make_app(VONAGE_SIGNATURE_SECRET=SECRET, VONAGE_SIGNATURE_METHOD="sha256")
    fields = fresh_receipt()
    fields.pop("err-code")
    fields["api-key=abcd1234&err-code"] = "0"

    response = app.test_client().post(URL, json=signed(fields, "sha256"))

    assert response.status_code == 401
    assert count(app, Receipt) == 0


def test_concurrent_setup_creates_one_account(app):
    token = setup_token(app)
    clients = [app.test_client() for _ in range(6)]
    fields = [
        setup_fields(
            client,
            token,
            email=f"first{index % 3}@example.com",
            password=TEST_PASSWORD,
            confirm=TEST_PASSWORD,
        )
        for index, client in enumerate(clients)
    ]
    barrier = threading.Barrier(len(clients))
    codes = []

    def submit(client, data):
        barrier.wait()
        codes.append(client.post(f"/setup/{token}", data=data).status_code)

    threads = [
        threading.Thread(target=submit, args=(client, data))
        for client, data in zip(clients, fields, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert count(app, User) == 1
    assert sorted(codes) == [302] + [404] * (len(clients) - 1)


def test_create_user_rejects_invalid_utf8(app):
    result = app.test_cli_runner().invoke(
        args=["create-user", "bob@example.com"], input=b"\xff\xfe password\n\xff\xfe password\n"
    )

    assert result.exit_code != 0
    assert "Nothing was created" in result.output or "UTF-8" in result.output
    assert count(app, User) == 0


def test_request_log_hides_query_string(app, caplog):
    with serve(app) as base_url, caplog.at_level(logging.INFO, logger="werkzeug"):
        requests.get(
            f"{base_url}/webhooks/delivery-receipt?t=s3cr3t-value&msisdn=14155550123",
            timeout=10,
        )
        requests.get(f"{base_url}/setup/{setup_token(app)}", timeout=10)

    request_lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("/webhooks/delivery-receipt" in line for line in request_lines)
    assert any("/setup/…" in line for line in request_lines)
    for secret in ("s3cr3t-value", "14155550123", setup_token(app)):
        assert not any(secret in line for line in request_lines)
