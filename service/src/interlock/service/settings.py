"""The service's settings: one :class:`Settings` object, built once at start and injected.

Nothing else in the service reads the environment or the configuration file; components
take the values they need from a ``Settings`` handed to them.

Where a value comes from, highest precedence first:

1. arguments given to ``Settings(...)`` / :func:`load_settings` (the command line's flags);
2. ``INTERLOCK_*`` environment variables; nested groups use ``__``
   (``INTERLOCK_API__PORT=9000``, ``INTERLOCK_ACTIONS__MAX_ATTEMPTS=8``);
3. the TOML file ``config/interlock.toml`` (relative to the working directory; another
   file with ``load_settings(config_file=...)``, which must then exist), nested groups as
   tables (``[api]``); an invalid value there is reported naming the file;
4. the defaults below, which make ``interlock server`` with no configuration run
   embedded: a nats-server child process, SQLite under ``.interlock/``, 127.0.0.1:8400.

``INTERLOCK_NATS_URL`` has the same name and form as the SDK's (comma-separated URLs),
so a producer and the service on one machine read the same variable.

The secret key encrypts secrets at rest (Fernet): connections and notification
channels' Apprise URLs; ``previous_secret_keys`` are still accepted for reading (rotating
the key without downtime: :mod:`interlock.service.store.keyring`). It is
required unless the service runs embedded (embedded NATS and a SQLite database: one
machine, everything under the data directory); there :meth:`Settings.ensure_secret_key`
generates one into ``<data_dir>/secret.key`` (mode 0600) the first time, and logs so.
Any process with that data directory (``interlock worker`` beside an embedded server)
reads the key from the file when none is configured.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.fernet import Fernet
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from interlock.sdk.config import NatsOptions
from interlock.sdk.durations import parse_duration
from interlock.sdk.errors import ConfigurationError
from interlock.service.actions.origins import DestinationPattern

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "EMBEDDED",
    "ActionSettings",
    "ApiSettings",
    "EngineSettings",
    "ReplicaSettings",
    "Settings",
    "WebhookSettings",
    "load_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = Path("config/interlock.toml")
EMBEDDED = "embedded"
"""The value of ``nats_url`` that starts a nats-server child process."""
SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret

SCALE_OUT_NEEDS = (
    "several interlock servers need PostgreSQL (database_url = postgresql://...) and a "
    "NATS server or cluster (nats_url = nats://...), shared by all of them; SQLite and the "
    "embedded nats-server belong to one server (see docs/operations/scale-out.md)"
)
"""Why a second server on one SQLite file or embedded NATS is refused, and what to use."""

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "interlock_config_file", default=DEFAULT_CONFIG_FILE
)

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A duration written as ``90s``, ``10m``, ``2h``, ``500ms`` or a number of seconds."""


class ApiSettings(BaseModel):
    """Where the HTTP API listens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address to bind; 127.0.0.1 is local only.")
    port: int = Field(
        default=8400, ge=0, le=65535, description="TCP port to bind (0: any free port)."
    )

    @property
    def local(self) -> bool:
        """Whether only this machine can reach the API (a loopback address)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class EngineSettings(BaseModel):
    """How events are consumed and judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lateness_tolerance: Duration = Field(
        default=timedelta(seconds=30),
        description="A firing judged more than this after it was due is marked late.",
    )
    consumer_batch_size: int = Field(
        default=256, ge=1, le=10_000, description="Events fetched from JetStream per batch."
    )
    consumer_max_wait: Duration = Field(
        default=timedelta(milliseconds=200), description="Longest wait for a batch to fill."
    )
    checkpoint_interval: Duration = Field(
        default=timedelta(seconds=1),
        description="Longest time between engine checkpoints while events flow (a batch "
        "that fires always saves one); after a crash, events since the last one are "
        "fed again.",
    )


class ReplicaSettings(BaseModel):
    """Running as one of several replicas (issue 19, step 1: one fenced owner).

    Off by default: one server runs everything, with no lease. On, the replicas share a
    NATS server or cluster and PostgreSQL; one owns the engine and one the scheduled
    work, each under a lease in the NATS KV bucket ``lease_bucket`` (see
    :mod:`interlock.service.ownership` and docs/operations/scale-out.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Run as one of several replicas (needs PostgreSQL and a NATS server "
        "or cluster, not SQLite or the embedded nats-server).",
    )
    lease_ttl: Duration = Field(
        default=timedelta(seconds=10),
        description="How long a lease outlives its last renewal: a standby takes over "
        "at most this long after its owner died (renewed every third of it).",
    )
    lease_bucket: str = Field(
        default="INTERLOCK_LEASES",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The NATS KV bucket holding the leases (created if missing).",
    )
    lease_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Replicas of the lease bucket on a NATS cluster (3 on a 3-node cluster).",
    )
    name: str | None = Field(
        default=None,
        max_length=100,
        description="This replica's name in leases and logs (default: host name and pid).",
    )

    @field_validator("lease_ttl")
    @classmethod
    def _ttl_in_range(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=10):
            raise ValueError("must be between 1 second and 10 minutes")
        return value


def _split_list(value: Any) -> Any:
    """A comma-separated string (an environment variable) as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _destination_patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        DestinationPattern.parse(value)  # ValueError names the entry and the expected form
    return values


class WebhookSettings(BaseModel):
    """Where webhooks may go, and how hard each destination is pushed.

    See ``docs/operations/webhooks.md``: the allow-list's posture, pacing per
    destination, and when refusals count toward the circuit breaker.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_destinations: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_list)] = (
        Field(
            default=(),
            description="Where webhooks may go: hosts (hooks.example.com), wildcards "
            "(*.corp.example) or origins (https://hooks.example.com:8443); comma-separated "
            "in the environment. Empty: a webhook may go to an origin written literally in "
            "its rule, and a URL whose scheme, host or port is a template is refused. Set: "
            "every webhook's destination must match one entry, templated or not.",
        )
    )
    initial_concurrency: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Requests in flight at once to a destination (scheme, host and port) "
        "at first, per dispatcher; more while it answers promptly, fewer when it shows "
        "overload (refused connections, timeouts, 429, 503, answers a second late).",
    )
    max_concurrency: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="The most requests in flight at once to one destination, per "
        "dispatcher (actions.concurrency bounds them all); host_concurrency and a webhook "
        "action's concurrency= set a destination's own cap instead.",
    )
    host_concurrency: dict[str, Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=dict,
        description="The cap of requests in flight at once by host, wildcard or origin "
        "(the most specific entry wins); an action's concurrency= may be lower, not higher.",
    )
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="Time limit for opening a connection (at most half of "
        "actions.timeout): one not accepted in time is a sign of a full listen backlog.",
    )
    max_wait: Duration = Field(
        default=timedelta(seconds=2),
        description="Longest an action waits in the dispatcher for a free slot at its "
        "destination; past it (or when the wait is foreseeably longer) it goes back to "
        "the queue for later, which is not an attempt.",
    )
    health_window: Duration = Field(
        default=timedelta(seconds=60),
        description="A destination that answered a webhook within this time is alive: "
        "its refused or reset connections are congestion, retried without counting "
        "toward the circuit breaker. One that did not is judged down.",
    )
    congestion_retries: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Retries after congestion (refused, reset, HTTP 429) that one action "
        "may take without counting as failed attempts; the next ones count.",
    )

    @field_validator("allowed_destinations")
    @classmethod
    def _allowed_destinations_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _destination_patterns(value)

    @field_validator("host_concurrency")
    @classmethod
    def _host_concurrency_valid(cls, value: dict[str, int]) -> dict[str, int]:
        _destination_patterns(tuple(value))
        return value


class ActionSettings(BaseModel):
    """How the dispatcher runs actions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(
        default=5, ge=1, description="Attempts before an action fails for good."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=30), description="Time limit of one attempt."
    )
    backoff_initial: Duration = Field(
        default=timedelta(seconds=1),
        description="Wait before the first retry (then doubled, jittered).",
    )
    backoff_max: Duration = Field(
        default=timedelta(minutes=5), description="Longest wait between tries."
    )
    suspend_after: int = Field(
        default=10,
        ge=1,
        description="Consecutive failures after which a rule's action is suspended.",
    )
    concurrency: int = Field(default=64, ge=1, description="Actions executed at once.")
    lease: Duration | None = Field(
        default=None,
        description="How long a dispatcher's claim on an action lasts before another "
        "dispatcher (or this service after a crash) may run it again; longer than "
        "timeout. Default: twice timeout plus a minute.",
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings,
        description="Webhooks: allowed destinations and pacing per destination.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> ActionSettings:
        if self.lease is not None and self.lease <= self.timeout:
            raise ValueError("lease must be longer than timeout")
        return self


def _split_urls(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Everything the service is configured with (see the module docstring for sources)."""

    model_config = SettingsConfigDict(
        env_prefix="INTERLOCK_",
        env_nested_delimiter="__",
        toml_file=DEFAULT_CONFIG_FILE,
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,  # a rejected value may be a password or a key
    )

    data_dir: Path = Field(
        default=Path(".interlock"),
        description="Where the embedded mode keeps its database, NATS store and secret key.",
    )
    database_url: str = Field(
        default_factory=lambda data: f"sqlite:///{Path(data['data_dir']) / 'interlock.db'}",
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db "
        "(default: a SQLite file in data_dir).",
    )
    nats_url: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(EMBEDDED,),
        description="NATS server URLs (comma-separated in the environment), or 'embedded' "
        "to run a nats-server child process with its store in data_dir.",
    )
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_token: SecretStr | None = None
    nats_credentials: Path | None = Field(default=None, description="A NATS .creds file.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key encrypting channel secrets at rest; required unless embedded. "
        "Make one with: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'",
    )
    previous_secret_keys: Annotated[
        tuple[SecretStr, ...], NoDecode, BeforeValidator(_split_list)
    ] = Field(
        default=(),
        description="Older Fernet keys, still accepted for reading secrets while the "
        "newest (secret_key) writes: rotate the key, then `interlock connections "
        "reencrypt` (comma-separated in the environment).",
    )
    rules_dir: Path = Field(
        default=Path("config/rules"), description="Rule modules loaded at start."
    )
    deployments_file: Path = Field(
        default=Path("config/deployments.toml"),
        description="Work queues and deployments created at start if missing.",
    )
    adapters_file: Path = Field(
        default=Path("config/adapters.toml"),
        description="[adapters.NAME] sections polled by the service's scheduler (the format "
        "of `interlock adapter run`).",
    )
    embedded_nats_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Client port of the embedded nats-server; the start fails if it is "
        "taken. Unset: the port it had last time (kept in <data_dir>/server.json), else "
        "4222, else a free port, kept for the next starts.",
    )
    embedded_worker: bool = Field(
        default=True,
        description="Run a worker inside the server, serving every queue. Set false when "
        "`interlock worker` processes (--api-url, with a key of scope worker) serve the "
        "queues on other machines.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Log level of `interlock server` (its --log-level and -v win).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="'text': a line per record with its time; 'json': one JSON object per "
        "line (time, level, logger, message, and the record's structured fields).",
    )
    api: ApiSettings = ApiSettings()
    engine: EngineSettings = EngineSettings()
    actions: ActionSettings = ActionSettings()
    replicas: ReplicaSettings = ReplicaSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then the environment, then the TOML file (no dotenv, no secrets)."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file.get())
        return (init_settings, env_settings, toml)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url_has_scheme(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if "://" not in value or not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "must be sqlite:///path/to/file.db or postgresql://user@host:5432/database"
            )
        return value

    @field_validator("nats_url", mode="before")
    @classmethod
    def _nats_url_list(cls, value: Any) -> Any:
        return _split_urls(value)

    @field_validator("nats_url")
    @classmethod
    def _nats_url_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one URL, or 'embedded'")
        if EMBEDDED in value and len(value) > 1:
            raise ValueError("'embedded' stands alone: it cannot be mixed with server URLs")
        for position, url in enumerate(value, start=1):
            if url != EMBEDDED and "://" not in url:
                # Not echoed: a URL may hold a password.
                raise ValueError(f"URL #{position} has no scheme (use e.g. nats://host:4222)")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_fernet(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Fernet(value.get_secret_value())
            except (ValueError, TypeError):
                # The message never repeats the key.
                raise ValueError(
                    "is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                    "python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from None
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _previous_keys_are_fernet(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for position, key in enumerate(value, start=1):
            try:
                Fernet(key.get_secret_value())
            except (ValueError, TypeError):
                # The message never repeats the key.
                raise ValueError(
                    f"key #{position} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        return value

    @model_validator(mode="after")
    def _secret_key_required_unless_embedded(self) -> Settings:
        if self.secret_key is None and not self.embedded and not self.secret_key_file.exists():
            raise ConfigurationError(
                "secret_key",
                "required unless running embedded (embedded NATS and SQLite) or "
                f"{self.secret_key_file} holds one: set INTERLOCK_SECRET_KEY or secret_key "
                "in config/interlock.toml to a Fernet key",
            )
        return self

    @model_validator(mode="after")
    def _replicas_need_shared_services(self) -> Settings:
        if not self.replicas.enabled:
            return self
        if not self.database_url.startswith("postgresql"):
            raise ConfigurationError("replicas.enabled", SCALE_OUT_NEEDS)
        if self.nats_embedded:
            raise ConfigurationError("replicas.enabled", SCALE_OUT_NEEDS)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "database_url":
                yield name, _hide_password(value)
            elif name == "nats_url":
                yield name, tuple(_hide_password(url) for url in value)
            else:
                yield name, value

    @property
    def nats_embedded(self) -> bool:
        """Whether the service starts its own nats-server."""
        return self.nats_url == (EMBEDDED,)

    @property
    def embedded(self) -> bool:
        """Embedded NATS and a SQLite database: one machine, state under ``data_dir``."""
        return self.nats_embedded and self.database_url.startswith("sqlite")

    @property
    def secret_key_file(self) -> Path:
        """Where the embedded mode keeps its generated secret key."""
        return self.data_dir / SECRET_KEY_FILE

    def nats_options(self, *, name: str = "interlock-service") -> NatsOptions:
        """Connection options for the configured NATS servers (not for embedded mode)."""
        if self.nats_embedded:
            raise ConfigurationError(
                "nats_url", "is 'embedded': the embedded server's URL is known once it runs"
            )
        return NatsOptions(
            servers=self.nats_url,
            user=self.nats_user,
            password=_reveal(self.nats_password),
            token=_reveal(self.nats_token),
            credentials_file=self.nats_credentials,
            name=name,
        )

    def ensure_secret_key(self) -> SecretStr:
        """Return the configured secret key; embedded, read or create ``secret_key_file``.

        The generated key is written with mode 0600 and linked into place atomically, so
        two processes starting at once agree on one key; its creation is logged.

        Raises:
            ConfigurationError: the key file cannot be read or written, or holds no key.
        """
        if self.secret_key is not None:
            return self.secret_key
        path = self.secret_key_file
        if path.exists():
            return _read_key_file(path)
        key = Fernet.generate_key()
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(key + b"\n")
            os.link(draft, path)
        except FileExistsError:
            return _read_key_file(path)
        except OSError as exc:
            raise ConfigurationError("secret_key", f"cannot create {path}: {exc}") from exc
        finally:
            draft.unlink(missing_ok=True)
        logger.warning(
            "generated a new secret key in %s (mode 0600); channel secrets are encrypted "
            "with it: keep it with the database, or set INTERLOCK_SECRET_KEY",
            path,
        )
        return SecretStr(key.decode())


def load_settings(
    config_file: Path | None = DEFAULT_CONFIG_FILE,
    *,
    config_required: bool = False,
    **values: Any,
) -> Settings:
    """Build the settings from ``values``, the environment and ``config_file``.

    ``config_file=None`` reads no file. A missing file is the same as an empty one, unless
    ``config_required`` (the file was named on the command line): then it is an error.

    Raises:
        ConfigurationError: the file is missing (when required), unreadable or not TOML,
            or a setting is invalid; the message names the setting (as its dotted path,
            and the file or environment variable it came from) and says what is expected.
    """
    document = _read_config(config_file, required=config_required)
    token = _config_file.set(config_file if document is not None else None)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _configuration_error(exc, config_file, document or {}) from None
    finally:
        _config_file.reset(token)


def _read_config(path: Path | None, *, required: bool) -> dict[str, Any] | None:
    """The TOML document at ``path``; ``None`` when there is none (and none is required)."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigurationError(
                "--config", f"{path} does not exist (give the path of a TOML settings file)"
            ) from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError("--config", f"{path} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("--config", f"{path} is not valid TOML: {exc}") from None


def _in_document(document: Mapping[str, Any], location: tuple[int | str, ...]) -> bool:
    node: Any = document
    for part in location:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _configuration_error(
    exc: ValidationError, config_file: Path | None, document: Mapping[str, Any]
) -> ConfigurationError:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigurationError):
            problems.append((cause.setting, cause.reason))
            continue
        location = ".".join(str(part) for part in error["loc"])
        variable = "INTERLOCK_" + "__".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        if variable not in os.environ and _in_document(document, error["loc"]):
            where = f"in {config_file}"
        else:
            where = f"environment: {variable}"
        problems.append((location, f"{message} ({where})"))
    setting, reason = problems[0]
    if len(problems) > 1:
        reason += "; also " + "; ".join(f"{name}: {why}" for name, why in problems[1:])
    return ConfigurationError(setting, reason)


def _read_key_file(path: Path) -> SecretStr:
    try:
        mode = path.stat().st_mode
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError("secret_key", f"cannot read {path}: {exc}") from exc
    if mode & 0o077:
        logger.warning("%s is readable by other users; run: chmod 600 %s", path, path)
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "secret_key", f"{path} does not hold a Fernet key; restore it from a backup"
        ) from None
    return SecretStr(key)


def _hide_password(url: str) -> str:
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
