"""Inputs that once broke the app: odd receipts, odd form input, odd URLs, crashes."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import form_tokens
from models import Receipt, Sms, SmsPart, Status, db, utcnow
from sending import settle_interrupted_sends

URL = "/webhooks/delivery-receipt"


def receipt(message_id, status="delivered", **extra):
    fields = {
        "msisdn": "14155550100",
        "messageId": message_id,
        "status": status,
        "err-code": "0",
        "message-timestamp": "2026-12-04 12:00:05",
    }
    fields.update(extra)
    return fields


def stored_receipts(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Receipt))


def message(app, sms_id):
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        return sms.status, [(part.status, part.err_code, part.price) for part in sms.parts]


# Receipts -----------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["1e30", "Infinity", "-1", "1000000", "0.000000001"])
def test_absurd_price_ignored(app, client, add_message, price):
    sms_id = add_message("0A00000000000001")

    assert client.post(URL, data=receipt("0A00000000000001", price=price)).status_code == 204

    assert client.get("/").status_code == 200
    assert client.get(f"/messages/{sms_id}").status_code == 200
    status, parts = message(app, sms_id)
    assert status == Status.DELIVERED
    assert parts[0][2] in (None, 0)


def test_deeply_nested_json_is_400(client):
    response = client.post(URL, data="[" * 5000, content_type="application/json")

    assert response.status_code == 400


def test_deeply_nested_json_with_token_is_401(make_app):
    app = make_app(WEBHOOK_TOKEN="tok")
    response = app.test_client().post(URL, data="[" * 5000, content_type="application/json")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "field", ["messageId", "status", "client-ref", "err-code", "message-timestamp", "t"]
)
@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
def test_unstorable_characters_replaced(app, client, field, bad):
    fields = receipt("0A00000000000001", **{field: bad})

    assert client.post(URL, json=fields).status_code == 204
    assert stored_receipts(app) == 1


def test_surrogate_token_is_401(make_app):
    app = make_app(WEBHOOK_TOKEN="tok")
    response = app.test_client().post(URL, json=receipt("0A00000000000001", t="\ud800"))

    assert response.status_code == 401


def test_invalid_utf8_byte_keeps_receipt(app, client, add_message):
    sms_id = add_message("0A00000000000001")
    body = b"messageId=0A00000000000001&status=delivered&network-code=\xff"

    response = client.post(URL, data=body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 204
    assert message(app, sms_id)[0] == Status.DELIVERED
    with app.app_context():
        assert db.session.scalar(select(Receipt)).payload["network-code"] == "\ufffd"


def test_undocumented_client_ref_receipt_changes_nothing(app, client, add_message):
    sms_id = add_message("0A00000000000001", client_ref="smstrack-ref")
    client.post(URL, data=receipt("0A00000000000001"))

    response = client.post(
        URL, data=receipt("0A0000000000FFFF", "weird", **{"client-ref": "smstrack-ref"})
    )

    assert response.status_code == 204
    assert message(app, sms_id)[0] == Status.DELIVERED
    assert len(message(app, sms_id)[1]) == 1


def test_client_ref_cannot_add_part_after_reply(app, client, add_message):
    sms_id = add_message("0A00000000000001", client_ref="smstrack-ref")

    client.post(URL, data=receipt("0A0000000000FFFF", "failed", **{"client-ref": "smstrack-ref"}))

    assert message(app, sms_id) == (Status.SUBMITTED, [(Status.SUBMITTED, None, None)])
    assert stored_receipts(app) == 1


def test_one_part_of_three_does_not_deliver(app, client, add_message):
    sms_id = add_message(client_ref="smstrack-ref")
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        sms.segments = 3
        sms.send_outcome = sms.status = Status.OUTCOME_UNKNOWN
        db.session.commit()

    client.post(URL, data=receipt("0A0000000000AAAA", **{"client-ref": "smstrack-ref"}))

    status, parts = message(app, sms_id)
    assert status == Status.OUTCOME_UNKNOWN
    assert [part[0] for part in parts] == [Status.DELIVERED]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_equal_rank_receipts_order_free(app, client, add_message, order):
    sms_id = add_message("0A00000000000001")
    candidates = [
        receipt("0A00000000000001", "failed", **{"err-code": "6", "price": "0.01"}),
        receipt("0A00000000000001", "failed", **{"err-code": "9", "price": "0.02"}),
    ]

    for index in order:
        client.post(URL, data=candidates[index])

    status, parts = message(app, sms_id)
    assert status == Status.FAILED
    assert parts[0][1] == "9"
    assert str(parts[0][2]) == "0.02000000"


def test_undocumented_status_price_ignored(app, client, add_message):
    sms_id = add_message("0A00000000000001")

    client.post(URL, data=receipt("0A00000000000001", "weird", price="99.5"))

    assert message(app, sms_id)[1][0][2] is None


# Pages and the form -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/?page=9223372036854775807", "/?page=0", "/?page=abc", "/messages/9223372036854775808"],
)
def test_out_of_range_urls_are_404(client, path):
    assert client.get(path).status_code == 404


def test_json_send_is_415(app, client):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))

    response = client.post(
        "/messages",
        json={"to": "+14155550199", "text": 5, "idempotency_key": tokens["idempotency_key"]},
        headers={"X-CSRFToken": tokens["csrf_token"]},
    )

    assert response.status_code == 415
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Sms)) == 0


def post_form(client, **fields):
    tokens = form_tokens(client.get("/messages/new").get_data(as_text=True))
    return client.post("/messages", data={**tokens, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to": "+1 800 555 0100"}, "toll-free"),
        ({"to": "+1 900 555 0100"}, "premium-rate"),
        ({"to": "+1 415 555 0100 ext. 99"}, "extension"),
        ({"text": "bell\x07"}, "control characters"),
        ({"text": "\u200b\u200b"}, "nothing visible"),
        ({"idempotency_key": "abcdefgh12345678\n"}, "submission key"),
    ],
)
def test_form_rejects(app, client, fields, message):
    response = post_form(client, **{"to": "+14155550199", "text": "Hi", **fields})

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_sender_with_spaces_around_accepted(app, client):
    response = post_form(client, to="+14155550199", text="Hi", sender=" +123456789012345 ")

    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Sms.sender)) == "123456789012345"


# Interrupted sends ---------------------------------------------------------------------


def test_interrupted_send_becomes_outcome_unknown(app, add_message):
    sms_id = add_message()
    fresh_id = add_message()
    with app.app_context():
        for number, age in ((sms_id, 3600), (fresh_id, 1)):
            sms = db.session.get(Sms, number)
            sms.send_outcome = sms.status = Status.PENDING
            sms.created_at = utcnow() - timedelta(seconds=age)
        db.session.commit()

        assert settle_interrupted_sends() == 1

        assert db.session.get(Sms, sms_id).status == Status.OUTCOME_UNKNOWN
        assert db.session.get(Sms, fresh_id).status == Status.PENDING
        assert db.session.scalar(select(func.count()).select_from(SmsPart)) == 0


def test_old_pending_message_flagged_overdue(make_app):
    from conftest import signed_in_client

    app = make_app(RECEIPT_OVERDUE_AFTER=1)
    client = signed_in_client(app)
    with app.app_context():
        db.session.add(
            Sms(
                recipient="14155550100",
                sender="smstrack",
                text="Hi",
                encoding="text",
                segments=1,
                created_at=utcnow() - timedelta(seconds=5),
            )
        )
        db.session.commit()

    assert 'data-overdue="true"' in client.get("/").get_data(as_text=True)


def test_list_page_settles_interrupted_sends(app, client, add_message):
    sms_id = add_message()
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        sms.send_outcome = sms.status = Status.PENDING
        sms.created_at = utcnow() - timedelta(seconds=3600)
        db.session.commit()

    page = client.get("/").get_data(as_text=True)

    assert f'data-sms-id="{sms_id}" data-status="outcome-unknown"' in page
