"""Settings: sources and their precedence, validation naming the setting, the secret key."""

from __future__ import annotations

import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from interlock.sdk.errors import ConfigurationError
from interlock.service.settings import Settings, load_settings

KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("INTERLOCK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(text: str) -> None:
    Path("config").mkdir(exist_ok=True)
    Path("config/interlock.toml").write_text(text)


def test_defaults_run_embedded_on_loopback() -> None:
    settings = load_settings()
    assert settings.data_dir == Path(".interlock")
    assert settings.database_url == "sqlite:///.interlock/interlock.db"
    assert settings.nats_url == ("embedded",)
    assert settings.embedded
    assert (settings.api.host, settings.api.port, settings.api.local) == ("127.0.0.1", 8400, True)
    assert settings.engine.lateness_tolerance == timedelta(seconds=30)
    assert settings.secret_key is None


def test_database_default_follows_the_data_dir() -> None:
    assert load_settings(data_dir=Path("/srv/il")).database_url == "sqlite:////srv/il/interlock.db"


def test_precedence_init_over_env_over_toml_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config('[api]\nhost = "0.0.0.0"\nport = 7000\n[engine]\nconsumer_batch_size = 10\n')
    monkeypatch.setenv("INTERLOCK_API__PORT", "9000")
    monkeypatch.setenv("INTERLOCK_ENGINE__LATENESS_TOLERANCE", "2m")
    settings = load_settings(api={"port": 1234})
    assert settings.api.port == 1234  # init
    assert settings.engine.lateness_tolerance == timedelta(minutes=2)  # env
    assert settings.api.host == "0.0.0.0"  # TOML
    assert not settings.api.local
    assert settings.engine.consumer_batch_size == 10  # TOML
    assert settings.actions.max_attempts == 5  # default
    assert load_settings().api.port == 9000
    assert load_settings(config_file=None).api.host == "127.0.0.1"


def test_nats_urls_are_comma_separated_like_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_NATS_URL", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("INTERLOCK_SECRET_KEY", KEY)
    monkeypatch.setenv("INTERLOCK_SOURCE", "sdk-only")  # the SDK's variables are not refused
    settings = load_settings()
    assert settings.nats_url == ("nats://a:4222", "nats://b:4222")
    assert not settings.embedded
    assert settings.nats_options().servers == ("nats://a:4222", "nats://b:4222")


@pytest.mark.parametrize(
    ("env", "setting", "message"),
    [
        ({"INTERLOCK_API__PORT": "99999"}, "api.port", "INTERLOCK_API__PORT"),
        ({"INTERLOCK_DATABASE_URL": "mysql://x"}, "database_url", "postgresql://"),
        ({"INTERLOCK_NATS_URL": "embedded,nats://a:1"}, "nats_url", "stands alone"),
        ({"INTERLOCK_NATS_URL": "localhost"}, "nats_url", "no scheme"),
        ({"INTERLOCK_ENGINE__LATENESS_TOLERANCE": "soon"}, "engine.lateness_tolerance", "90s"),
        ({"INTERLOCK_SECRET_KEY": "hunter2"}, "secret_key", "Fernet"),
        ({"INTERLOCK_NATS_URL": "nats://a:4222"}, "secret_key", "required unless"),
    ],
)
def test_errors_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.setting == setting
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_keys_in_the_file_are_refused() -> None:
    write_config("databse_url = 'sqlite:///x.db'\n")
    with pytest.raises(ConfigurationError, match="databse_url"):
        load_settings()


def test_repr_hides_passwords_and_keys() -> None:
    settings = load_settings(
        database_url="postgresql://u:hunter2@db/interlock",
        nats_url="nats://u:hunter2@n:4222",
        secret_key=KEY,
        nats_password="hunter2",
    )
    assert "hunter2" not in repr(settings)
    assert KEY not in repr(settings)
    assert "postgresql://u:***@db/interlock" in repr(settings)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - pydantic's own error, raw
        Settings(secret_key="hunter2")
    assert "hunter2" not in str(caught.value)


def test_embedded_mode_generates_a_private_secret_key_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings()
    with caplog.at_level(logging.WARNING):
        key = settings.ensure_secret_key()
    path = Path(".interlock/secret.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    assert key.get_secret_value() not in caplog.text
    Fernet(key.get_secret_value())
    caplog.clear()
    assert load_settings().ensure_secret_key() == key
    assert caplog.text == ""


def test_a_configured_key_is_used_and_no_file_written() -> None:
    settings = load_settings(secret_key=KEY)
    assert settings.ensure_secret_key().get_secret_value() == KEY
    assert not Path(".interlock").exists()


def test_a_corrupt_key_file_is_a_configuration_error() -> None:
    Path(".interlock").mkdir()
    Path(".interlock/secret.key").write_text("garbage")
    with pytest.raises(ConfigurationError, match="secret_key"):
        load_settings().ensure_secret_key()


def test_a_config_file_named_on_the_command_line_must_exist() -> None:
    assert load_settings(Path("nowhere.toml")).api.port == 8400  # the default may be absent
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Path("typo.toml"), config_required=True)
    assert str(caught.value) == (
        "--config: typo.toml does not exist (give the path of a TOML settings file)"
    )


def test_a_config_file_that_is_not_toml_is_named() -> None:
    write_config("[api\nport = 1\n")
    with pytest.raises(ConfigurationError, match=r"^--config: config/interlock.toml is not valid"):
        load_settings()


def test_an_invalid_value_names_the_file_or_the_variable_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config("[engine]\nconsumer_batch_size = 0\n")
    with pytest.raises(ConfigurationError, match=r"\(in config/interlock.toml\)$"):
        load_settings()
    monkeypatch.setenv("INTERLOCK_ENGINE__CONSUMER_BATCH_SIZE", "-1")
    with pytest.raises(ConfigurationError, match=r"\(environment: INTERLOCK_ENGINE__"):
        load_settings()


def test_a_process_beside_an_embedded_server_reads_its_secret_key_file() -> None:
    # `interlock worker` with the embedded server's NATS URL is not embedded itself, yet
    # needs no INTERLOCK_SECRET_KEY: the data directory holds the server's key.
    key = load_settings().ensure_secret_key()
    worker = load_settings(nats_url="nats://127.0.0.1:4222")
    assert not worker.embedded
    assert worker.ensure_secret_key() == key
