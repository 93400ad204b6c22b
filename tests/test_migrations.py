"""Migrations: they build the schema the models describe, and upgrade without loss."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from app import create_app
from conftest import TEST_SETTINGS
from models import db

HEAD = "0002_accounts"


def migrated_app(new_database, revision="head"):
    app = create_app({**TEST_SETTINGS, "DATABASE_URL": new_database()})
    with app.app_context():
        flask_migrate.upgrade(revision=revision)
    return app


def test_migrations_match_models(new_database):
    app = migrated_app(new_database)

    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
        revision = context.get_current_revision()
        db.engine.dispose()

    assert differences == []
    assert revision == HEAD


def test_upgrade_keeps_rows(new_database):
    app = migrated_app(new_database, revision="0001_messages")
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO sms (recipient, sender, text, encoding, segments, client_ref, "
                "send_outcome, status, created_at, updated_at) VALUES ('14155550100', "
                "'smstrack', 'Before the upgrade', 'text', 1, 'smstrack-old', 'submitted', "
                "'delivered', '2026-12-01 10:00:00+00:00', '2026-12-01 10:00:05+00:00')"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO sms_part (sms_id, position, message_id, send_status, status, "
                "updated_at) VALUES (1, 0, '0A0000000000AAAA', 'submitted', 'delivered', "
                "'2026-12-01 10:00:05+00:00')"
            )
        )
        db.session.commit()

        flask_migrate.upgrade()

        row = db.session.execute(text("SELECT text, status, user_id FROM sms")).one()
        part = db.session.execute(text("SELECT message_id FROM sms_part")).scalar_one()
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.remove()
        db.engine.dispose()

    assert tuple(row) == ("Before the upgrade", "delivered", None)
    assert part == "0A0000000000AAAA"
    assert revision == HEAD


def test_healthz_reports_revision(new_database):
    app = migrated_app(new_database)

    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["revision"] == HEAD
    with app.app_context():
        db.engine.dispose()
