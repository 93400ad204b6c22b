"""The delivery receipt webhook, fed through the Flask test client."""

import logging

import pytest
from sqlalchemy import func, select

from models import Receipt, Sms, SmsPart, Status, db

URL = "/webhooks/delivery-receipt"


def receipt(message_id, status="delivered", **extra):
    fields = {
        "msisdn": "14155550100",
        "to": "smstrack",
        "network-code": "310090",
        "messageId": message_id,
        "price": "0.00570000",
        "status": status,
        "scts": "2612041200",
        "err-code": "0",
        "api-key": "sandbox",
        "message-timestamp": "2026-12-04 12:00:05",
    }
    fields.update(extra)
    return {name: value for name, value in fields.items() if value is not None}


def message_status(app, sms_id):
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        return sms.status, [part.status for part in sms.parts]


def receipt_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Receipt))


@pytest.mark.parametrize("how", ["query", "form", "json"])
def test_receipt_each_format(app, client, add_message, how):
    sms_id = add_message("0A00000000000001")
    fields = receipt("0A00000000000001")

    if how == "query":
        response = client.get(URL, query_string=fields)
    elif how == "form":
        response = client.post(URL, data=fields)
    else:
        response = client.post(URL, json=fields)

    assert response.status_code == 204
    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED])
    with app.app_context():
        stored = db.session.scalar(select(Receipt))
        assert stored.payload == fields
        assert str(stored.price) == "0.00570000"


def test_second_part_receipt(app, client, add_message):
    sms_id = add_message("0A00000000000001", "0A00000000000002")

    client.post(URL, data=receipt("0A00000000000002"))

    assert message_status(app, sms_id) == (Status.SUBMITTED, [Status.SUBMITTED, Status.DELIVERED])
    client.post(URL, data=receipt("0A00000000000001"))
    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED, Status.DELIVERED])
    with app.app_context():
        assert str(db.session.get(Sms, sms_id).total_price) == "0.01140000"


def test_receipt_before_part_exists(app, client, add_message):
    response = client.post(URL, json=receipt("0A00000000000009"))
    assert response.status_code == 204
    with app.app_context():
        assert db.session.scalar(select(Receipt.part_id)) is None

    # The send reply stores the part afterwards, which picks up the waiting receipt.
    from sending import record_reply

    sms_id = add_message()
    with app.app_context():
        record_reply(sms_id, [{"status": "0", "message_id": "0A00000000000009"}])

    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED])


def test_receipt_by_client_ref_creates_part(app, client, add_message):
    sms_id = add_message(client_ref="smstrack-abc")
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        sms.send_outcome = Status.OUTCOME_UNKNOWN
        sms.status = Status.OUTCOME_UNKNOWN
        db.session.commit()

    client.post(URL, data=receipt("0A0000000000000C", **{"client-ref": "smstrack-abc"}))

    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED])


def test_duplicate_receipt_stored_once(app, client, add_message):
    add_message("0A00000000000001")

    first = client.post(URL, data=receipt("0A00000000000001"))
    second = client.post(URL, json=receipt("0A00000000000001", sig="resigned", nonce="n2"))

    assert first.status_code == 204
    assert second.status_code == 204
    assert receipt_count(app) == 1


def test_late_accepted_keeps_delivered(app, client, add_message):
    sms_id = add_message("0A00000000000001")

    client.post(URL, data=receipt("0A00000000000001", "delivered"))
    earlier = {"message-timestamp": "2026-12-04 11:59:00"}
    client.post(URL, data=receipt("0A00000000000001", "accepted", **earlier))

    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED])
    assert receipt_count(app) == 2
    page = client.get(f"/messages/{sms_id}").get_data(as_text=True)
    assert page.count('class="receipt"') == 2


def test_failure_outranks_delivered(app, client, add_message):
    sms_id = add_message("0A00000000000001")

    client.post(URL, data=receipt("0A00000000000001", "failed", **{"err-code": "6"}))
    client.post(URL, data=receipt("0A00000000000001", "delivered"))

    assert message_status(app, sms_id) == (Status.FAILED, [Status.FAILED])
    page = client.get(f"/messages/{sms_id}").get_data(as_text=True)
    assert "conflicting finals" in page


def test_failed_without_scts_or_network(app, client, add_message):
    sms_id = add_message("0A00000000000001")
    fields = receipt("0A00000000000001", "failed", scts=None, **{"network-code": None})
    fields["err-code"] = "12"

    response = client.post(URL, data=fields)

    assert response.status_code == 204
    assert message_status(app, sms_id) == (Status.FAILED, [Status.FAILED])
    page = client.get(f"/messages/{sms_id}").get_data(as_text=True)
    assert "err-code 12: Destination unreachable" in page
    listing = client.get("/").get_data(as_text=True)
    assert "Destination unreachable" in listing


@pytest.mark.parametrize("missing", ["messageId", "status"])
def test_missing_field_rejected(app, client, add_message, missing):
    sms_id = add_message("0A00000000000001")
    fields = receipt("0A00000000000001")
    del fields[missing]

    response = client.post(URL, data=fields)

    assert response.status_code == 400
    assert response.is_json
    assert response.json["missing"] == [missing]
    assert receipt_count(app) == 0
    assert message_status(app, sms_id) == (Status.SUBMITTED, [Status.SUBMITTED])


@pytest.mark.parametrize("status", ["unknown", "mystery-status"])
def test_unknown_status_stored(app, client, add_message, caplog, status):
    sms_id = add_message("0A00000000000001")
    client.post(URL, data=receipt("0A00000000000001", "accepted"))

    with caplog.at_level(logging.INFO, logger="smstrack"):
        later = {"message-timestamp": "2026-12-04 12:01:00"}
        response = client.post(URL, data=receipt("0A00000000000001", status, **later))

    assert response.status_code == 204
    assert receipt_count(app) == 2
    expected = Status.UNKNOWN if status == "unknown" else Status.ACCEPTED
    assert message_status(app, sms_id) == (expected, [expected])
    assert any(status in record.getMessage() for record in caplog.records)
    if status != "unknown":
        assert any(record.levelno == logging.WARNING for record in caplog.records)


@pytest.mark.parametrize(
    "odd",
    [
        {"price": "not-a-number"},
        {"price": "NaN"},
        {"message-timestamp": "yesterday"},
        {"scts": "99999999999999"},
        {"err-code": "x" * 300},
        {"client-ref": "y" * 500},
        {"messageId": "Z" * 200},
        {"status": "s" * 200},
        {"extra-field": "\u0000\u202e"},
    ],
)
def test_odd_fields_never_5xx(app, client, add_message, odd):
    add_message("0A00000000000001")
    fields = receipt("0A00000000000001", **odd)

    assert client.post(URL, data=fields).status_code == 204
    assert client.post(URL, json=fields).status_code == 204
    assert receipt_count(app) == 1


@pytest.mark.parametrize("body", ['["not", "an", "object"]', "{broken json", "null"])
def test_non_object_json_is_400(client, body):
    response = client.post(URL, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.is_json


def test_json_numbers_kept_as_text(app, client, add_message):
    sms_id = add_message("0A00000000000001")
    fields = receipt("0A00000000000001", **{"err-code": 0, "price": 0.0057})

    assert client.post(URL, json=fields).status_code == 204
    assert message_status(app, sms_id) == (Status.DELIVERED, [Status.DELIVERED])
    with app.app_context():
        part = db.session.scalar(select(SmsPart))
        assert part.err_code == "0"


def test_webhook_needs_no_csrf(client):
    # CSRF protection is on in these tests; the webhook is exempt by design.
    assert client.post(URL, data=receipt("0A000000000000FF")).status_code == 204
