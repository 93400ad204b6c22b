"""Configuration: defaults, checks at startup and the sandbox's generated secret key."""

import pytest

from app import ConfigError, create_app, read_settings


def build(tmp_path, **settings):
    config = {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'config.db'}", **settings}
    return create_app(config, instance_path=str(tmp_path / "instance"))


def test_sandbox_without_credentials(tmp_path):
    app = build(tmp_path)

    assert app.config["SANDBOX"] is True
    assert app.config["SMS_SENDER"] == "smstrack"
    assert app.config["RECEIPT_CALLBACK_URL"] is None


def test_sandbox_secret_key_shared(tmp_path):
    first = build(tmp_path)
    second = build(tmp_path)

    key_file = tmp_path / "instance" / "secret_key"
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert key_file.read_text() == first.config["SECRET_KEY"]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_credentials_need_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is missing"):
        build(tmp_path, VONAGE_API_KEY="abcd1234", VONAGE_API_SECRET="s3cret", SMS_SENDER="Acme")


def test_credentials_need_sender(tmp_path):
    with pytest.raises(ConfigError, match="SMS_SENDER is missing"):
        build(tmp_path, VONAGE_API_KEY="abcd1234", VONAGE_API_SECRET="s3cret", SECRET_KEY="k")


def test_half_credentials_rejected(tmp_path):
    with pytest.raises(ConfigError, match="both VONAGE_API_KEY and VONAGE_API_SECRET"):
        build(tmp_path, VONAGE_API_KEY="abcd1234")


def test_real_mode_with_everything_set(tmp_path):
    app = build(
        tmp_path,
        VONAGE_API_KEY="abcd1234",
        VONAGE_API_SECRET="s3cret",
        SECRET_KEY="k",
        SMS_SENDER="Acme",
        PUBLIC_URL="https://team.ngrok.app/",
    )

    assert app.config["SANDBOX"] is False
    assert app.config["RECEIPT_CALLBACK_URL"] == "https://team.ngrok.app/webhooks/delivery-receipt"
    page = app.test_client().get("/messages/new").get_data(as_text=True)
    assert "Sandbox mode" not in page


def test_public_url_too_long(tmp_path):
    long_url = "https://" + "a" * 80 + ".ngrok.app"

    with pytest.raises(ConfigError, match="at most 100"):
        build(tmp_path, PUBLIC_URL=long_url)


@pytest.mark.parametrize("url", ["team.ngrok.app", "ftp://team.ngrok.app", "https://"])
def test_public_url_invalid(tmp_path, url):
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        build(tmp_path, PUBLIC_URL=url)


def test_environment_values_parsed():
    environ = {"VONAGE_TIMEOUT": " 3 ", "SANDBOX_RECEIPT_DELAY": "0.2", "PUBLIC_URL": ""}

    settings = read_settings(environ)

    assert settings["VONAGE_TIMEOUT"] == 3
    assert settings["SANDBOX_RECEIPT_DELAY"] == 0.2
    assert settings["PUBLIC_URL"] is None


def test_environment_value_invalid():
    with pytest.raises(ConfigError, match="MAX_SEGMENTS='many' is invalid"):
        read_settings({"MAX_SEGMENTS": "many"})


def test_zero_timeout_rejected(tmp_path):
    with pytest.raises(ConfigError, match="VONAGE_TIMEOUT=0"):
        build(tmp_path, VONAGE_TIMEOUT=0)
