"""The send form: parsing, validation errors and the stored message."""

import pytest
from sqlalchemy import func, select

from conftest import form_tokens, signed_in_client
from models import Sms, db


def post_form(client, **fields):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))
    return client.post("/messages", data={**tokens, **fields})


def message_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Sms))


@pytest.mark.parametrize("number", ["12", "+1 415 555 01", "hello", "+999 1234 5678", "0"])
def test_invalid_number_keeps_input(app, client, number):
    response = post_form(client, to=number, text="Hello there")

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is not a valid phone number" in page
    assert "Hello there</textarea>" in page
    assert f'value="{number}"' in page
    assert message_count(app) == 0


def test_missing_text_rejected(app, client):
    response = post_form(client, to="+14155550100", text="")

    assert response.status_code == 422
    assert "Enter the message text." in response.get_data(as_text=True)
    assert message_count(app) == 0


def test_text_over_segment_limit(make_app):
    app = make_app(MAX_SEGMENTS=2)
    client = signed_in_client(app)

    response = post_form(client, to="+14155550100", text="a" * 307)

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "needs 3 segments and the limit is 2" in page
    assert "at most 306 characters" in page
    assert message_count(app) == 0


def test_unicode_text_over_limit_names_character(make_app):
    app = make_app(MAX_SEGMENTS=1)
    client = signed_in_client(app)

    response = post_form(client, to="+14155550100", text="✓" + "a" * 70)

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "about 67 characters" in page
    assert "It contains &#39;✓&#39;, which needs Unicode" in page


@pytest.mark.parametrize("sender", ["ThisIsTooLongASender", "bad!sender", "12"])
def test_invalid_sender_rejected(app, client, sender):
    response = post_form(client, to="+14155550100", text="Hi", sender=sender)

    assert response.status_code == 422
    assert message_count(app) == 0


def test_post_without_csrf_sends_nothing(app, client):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))

    response = client.post(
        "/messages",
        data={"to": "+14155550100", "text": "Hi", "idempotency_key": tokens["idempotency_key"]},
    )

    assert response.status_code in (400, 422)
    assert message_count(app) == 0


def test_post_without_idempotency_key(app, client):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))

    response = client.post(
        "/messages", data={"to": "+14155550100", "text": "Hi", "csrf_token": tokens["csrf_token"]}
    )

    assert response.status_code == 422
    assert "submission key" in response.get_data(as_text=True)
    assert message_count(app) == 0


def test_form_shows_counter_and_sandbox_hint(client):
    page = client.get("/messages/new").get_data(as_text=True)

    assert 'data-sms-counter="text-counter"' in page
    assert "js/counter.js" in page
    assert "Sandbox mode" in page
