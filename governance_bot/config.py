"""Configuration: one TOML file, validated as a whole, every problem reported at once.

* Secrets are written only as ``${ENV_VAR}`` references; a missing variable is an error naming it.
* Any value can be overridden by ``GOVERNANCE_BOT_<SECTION>__<KEY>``, e.g.
  ``GOVERNANCE_BOT_DATABASE__URL``.
* Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Config", "ConfigError", "env_name", "load_config"]

log = logging.getLogger(__name__)
ENV_PREFIX = "GOVERNANCE_BOT_"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = len(problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in problems)]))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # fields where "" means something (a closed day); every other empty text is a mistake
    empty_allowed: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value.strip() and info.field_name not in \
                cls.empty_allowed:
            raise ValueError("is empty")
        return value


class OrganisationSettings(_Section):
    name: str = Field(default="Our organisation", min_length=1)
    timezone: str = "Europe/London"
    nation: Literal["ENG", "NIR", "SCT", "WLS"] = Field(
        default="ENG", description="UK nation whose bank holidays apply"
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use a name like Europe/London)"
            ) from exc
        return value


class DatabaseSettings(_Section):
    url: str = "sqlite:///governance-bot.db"
    echo: bool = False


class RegistersSettings(_Section):
    """Register files loaded by `registers import` when no file is given on the command line."""

    file: Path | None = Field(default=None, description="registers as TOML")
    learners: Path | None = None
    staff: Path | None = None
    accounts: Path | None = None


class Period(_Section):
    start: date
    end: date
    name: str = ""


def _parse_span(value: str) -> tuple[time, time]:
    start_s, _, end_s = value.partition("-")
    start, end = time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
    if end <= start:
        raise ValueError(f"{value!r}: the end must be after the start")
    return start, end


class WorkingHoursSettings(_Section):
    """When staff may message learners. A day set to "" is closed."""

    empty_allowed: ClassVar[frozenset[str]] = frozenset(_WEEKDAYS)
    monday: str = "08:00-18:00"
    tuesday: str = "08:00-18:00"
    wednesday: str = "08:00-18:00"
    thursday: str = "08:00-18:00"
    friday: str = "08:00-18:00"
    saturday: str = ""
    sunday: str = ""
    bank_holidays: bool = Field(default=True, description="bank holidays count as closed")
    term_dates: list[Period] = Field(default_factory=list)
    closures: list[Period] = Field(default_factory=list)
    outside_term_is_closed: bool = False

    @field_validator(*_WEEKDAYS)
    @classmethod
    def _span(cls, value: str) -> str:
        if value.strip():
            try:
                _parse_span(value)
            except ValueError as exc:
                raise ValueError(
                    f"{value!r} is not a span like \"08:00-18:00\" ({exc})"
                ) from exc
        return value.strip()

    def span(self, weekday: int) -> tuple[time, time] | None:
        value = getattr(self, _WEEKDAYS[weekday])
        return _parse_span(value) if value else None


class DetectionSettings(_Section):
    packs_dir: Path | None = Field(default=None, description="extra or replacement rule packs")
    disabled_rules: list[str] = Field(default_factory=list)
    out_of_hours_repeat_count: int = Field(default=3, ge=2)
    out_of_hours_repeat_window_days: int = Field(default=14, ge=1)


class MediaSettings(_Section):
    """The media step: pictures of connector items fetched into the media store before the text
    in them is read and the image checks run (docs/items.md, "Pictures")."""

    enabled: bool = Field(default=True, description="fetch pictures and video stills")
    folder: Path = Field(default=Path("media"), description="the media store (created 0700; "
                         "relative to the config file's folder)")
    timeout_seconds: float = Field(default=20.0, gt=0, le=300,
                                   description="at most this long for one picture")
    batch_timeout_seconds: float = Field(default=60.0, gt=0, le=3600,
                                         description="at most this long for a batch's pictures")
    max_per_item: int = Field(default=8, ge=1, le=50)
    workers: int = Field(default=4, ge=1, le=32, description="downloads at once")
    refetch_after_hours: float = Field(default=24.0, gt=0, description="a picture fetched "
                                       "before is downloaded again after this long")
    max_attempts: int = Field(default=6, ge=1, le=20, description="tries of a picture that "
                              "could not be fetched before giving up")
    allow_private_networks: bool = Field(
        default=False, description="fetch from private or local network addresses (only for a "
        "platform on your own network, e.g. a school's Mastodon server)")


class RoutingSettings(_Section):
    """Who receives what (docs/routing.md). ``overrides``: single cells of the need-to-know table,
    "category" or "category:severity" -> route; ``staff_concerns_to``: the case manager for
    concerns about staff ("dsl" or staff_ids); ``staff_concerns_alternate``: who takes a concern
    about the case manager or the DSL (staff_ids; default the chair of governors, else the
    headteacher)."""

    overrides: dict[str, Literal["account_managers", "dsl", "case_manager", "digest",
                                 "case_digest", "record_only"]] = Field(default_factory=dict)
    staff_concerns_to: Literal["dsl"] | list[str] = Field(
        default="dsl", description='"dsl" or staff_ids (e.g. the headteacher)')
    staff_concerns_alternate: list[str] = Field(
        default_factory=list, description="staff_ids (e.g. the chair of governors)")


class DeliverySettings(_Section):
    sink: Literal["console", "json", "slack"] = "console"
    json_path: Path | None = Field(default=None, description="for sink = json: a .jsonl file")
    mask_learner_details: bool = True


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class RotaEntry(_Section):
    """Out-of-hours cover: who is on call for safeguarding escalations in a weekly slot."""

    days: list[Weekday] = Field(default_factory=lambda: list(_WEEKDAYS))  # type: ignore[arg-type]
    hours: str = Field(default="00:00-23:59", description='local time span like "18:00-23:59"')
    staff: list[str] = Field(min_length=1, description="staff_ids on call, in order")

    @field_validator("hours")
    @classmethod
    def _span(cls, value: str) -> str:
        try:
            _parse_span(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a span like \"18:00-23:59\" ({exc})") from exc
        return value


class SlackSettings(_Section):
    """The Slack app (docs/slack.md). Tokens fall back to SLACK_BOT_TOKEN, SLACK_APP_TOKEN and
    SLACK_SIGNING_SECRET in the environment."""

    enabled: bool = False
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str | None = Field(default=None, description="Slack Web API base URL, e.g. for tests")
    base_url: str | None = Field(default=None, description="older name of api_url")
    mode: Literal["http", "socket"] = "http"
    delivery: Literal["dm", "channel"] = Field(
        default="dm", description="dm: one group DM per route; channel: the private channels below")
    channels: dict[Literal["account_managers", "dsl", "digest"], str] = Field(
        default_factory=dict, description="route -> private channel id (delivery = channel)")
    dsl_content: Literal["full", "excerpt", "none"] = "excerpt"
    escalation_minutes: dict[str, int] = Field(
        default_factory=lambda: {"5": 15, "4": 60},
        description="severity -> minutes a safeguarding flag may stay unacknowledged")
    escalate_to: list[str] = Field(
        default_factory=list, description="staff_ids contacted after the deputies (next contact)")
    # KCSIE part 4: an allegation about staff is handled promptly (the case manager discusses it
    # with the LADO within one working day); one not acknowledged in time goes to the alternate
    staff_concern_escalation_minutes: dict[str, int] = Field(
        default_factory=lambda: {"5": 60, "4": 240, "3": 1440},
        description="severity -> minutes a concern about staff may stay unacknowledged by its "
                    "case manager before it is sent to the alternate")
    rota: list[RotaEntry] = Field(default_factory=list)
    digest_time: str = Field(default="08:00", description="local time of the daily digest")
    weekly_summary_day: Literal["monday", "tuesday", "wednesday", "thursday", "friday",
                                "saturday", "sunday"] = Field(
        default="monday", description="day of the case manager's weekly summary (conversations "
                                      "without a second adult, at digest_time)")
    escalation_interval_seconds: int = Field(default=60, ge=5)

    @field_validator("digest_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time like \"08:00\"") from exc
        return value

    @field_validator("escalation_minutes", "staff_concern_escalation_minutes")
    @classmethod
    def _minutes(cls, value: dict[str, int]) -> dict[str, int]:
        for sev, minutes in value.items():
            if sev not in {"1", "2", "3", "4", "5"} or minutes < 1:
                raise ValueError(f"{sev} = {minutes}: use a severity 1-5 and at least 1 minute")
        return value

    @property
    def web_api_url(self) -> str | None:
        return self.api_url or self.base_url


class ServiceSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    outbox_interval_seconds: int = Field(default=10, ge=1)
    lease_seconds: int = Field(
        default=60, ge=1, description="how long another replica waits before taking over the "
        "polling or the claimed notifications of a replica that died (docs/replicas.md)")
    max_body_bytes: int = Field(
        default=2_097_152, ge=1024, description="largest request body accepted (bytes); larger "
        "ones are refused (413) while they arrive, before they are read into memory")
    webhook_answer_seconds: float = Field(
        default=2.0, ge=0, le=20, description="how long a webhook's answer waits for its items to "
        "be checked; a delivery is stored before that, and finished afterwards if need be, so "
        "this only keeps the platforms' deadlines (Slack and Graph: 3 seconds)")
    public_url: str | None = Field(
        default=None, description="the HTTPS address where platforms reach this service from the "
        "internet (e.g. https://governance.example.org); webhook subscriptions the service makes "
        "itself (Microsoft Teams) point at <public_url>/webhooks/<connector name>")

    @field_validator("public_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValueError(f"{value!r}: give the https:// address the service is reachable at "
                             "from the internet (Microsoft Graph only delivers to HTTPS)")
        return value


OIDC_PRESETS = {
    # provider -> issuer (Entra ID's names the tenant: {tenant} is filled from [console.oidc])
    "slack": "https://slack.com",
    "google": "https://accounts.google.com",
    "entra": "https://login.microsoftonline.com/{tenant}/v2.0",
}


class OidcSettings(_Section):
    """Sign-in to the console through the organisation's identity provider (docs/console.md).
    No local passwords: the provider says who the person is; the staff register says what they
    may see."""

    provider: Literal["slack", "entra", "google", "issuer"] = Field(
        default="issuer", description="a documented preset, or any OpenID Connect issuer by URL")
    issuer: str | None = Field(default=None, description="the issuer URL (provider = issuer)")
    tenant: str | None = Field(default=None, description="Entra ID: the directory (tenant) id")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: str = "openid email profile"

    def issuer_url(self) -> str | None:
        if self.provider == "issuer":
            return self.issuer.rstrip("/") if self.issuer else None
        if self.provider == "entra":
            return OIDC_PRESETS["entra"].format(tenant=self.tenant) if self.tenant else None
        return OIDC_PRESETS[self.provider]


class ConsoleSettings(_Section):
    """The case console served by `governance-bot run` (docs/console.md)."""

    enabled: bool = True
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    session_secret: SecretStr | None = Field(
        default=None, description="signs the console's cookies; from the environment (without "
        "it, each start makes a new one and everyone signs in again)")
    idle_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    absolute_timeout_hours: int = Field(default=10, ge=1, le=7 * 24)
    dev_login: bool = Field(
        default=False, description="development sign-in for the bundled example only: refused "
        "unless the service is bound to a loopback address")
    administrators: list[str] = Field(
        default_factory=list, description="staff_ids of the IT administrators (system health, "
        "connectors and the audit log; never case content)")

    @field_validator("oidc")
    @classmethod
    def _oidc(cls, value: OidcSettings) -> OidcSettings:
        if value.provider == "issuer" and value.issuer and not re.match(
                r"^https?://[^/\s]+", value.issuer):
            raise ValueError(f"issuer {value.issuer!r}: give the issuer's URL (https://...)")
        if value.provider == "entra" and value.client_id and not value.tenant:
            raise ValueError("provider = \"entra\" needs tenant = \"<directory id>\"")
        return value


class SecuritySettings(_Section):
    """Encryption at rest (docs/security.md)."""

    # an empty key list gets its own message (load_config: _check_keys): it must never mean "off"
    empty_allowed: ClassVar[frozenset[str]] = frozenset({"encryption_keys"})

    encryption_keys: SecretStr | None = Field(
        default=None, description="comma-separated Fernet keys, newest first; from the environment"
    )
    webhook_replay_window_hours: int = Field(
        default=72, ge=1, description="a signed webhook delivery seen again within this many "
        "hours is acknowledged without being processed (governance_bot/webhooks.py)")

    def keys(self) -> list[str]:
        if self.encryption_keys is None:
            return []
        return [k.strip() for k in self.encryption_keys.get_secret_value().split(",") if k.strip()]


class AuditLogSettings(_Section):
    """Anchoring the tamper-evident audit log outside the database (docs/security.md)."""

    anchor_file: Path | None = Field(
        default=Path("audit-anchors.log"), description="append-only file the log's head is "
        "written to (relative to the config file's folder); put it where the service can append "
        "but which is backed up apart from the database")
    anchor_minutes: int = Field(default=60, ge=1, le=24 * 60,
                                description="how often the running service anchors the head")
    syslog: bool = Field(default=False, description="also send each anchor to syslog "
                         "(facility authpriv), from where it can be forwarded off the machine")
    slack_channel: str | None = Field(
        default=None, description="also post each anchor to this Slack channel id (the bot must "
        "be in it), so a deleted tail shows against what was posted")


def _default_category_retention() -> dict[str, int]:
    # child-protection records: 25 years (IRMS toolkit for schools: DOB + 25 years); others 6
    return {"safeguarding": 9125}


class RetentionSettings(_Section):
    """How long archived content is kept, in days (docs/data-protection.md). Items under a
    legal hold are never removed."""

    unflagged_days: int = Field(default=365, ge=1, description="items with no flag")
    flagged_days: int = Field(default=2190, ge=1, description="flagged items (6 years)")
    categories: dict[str, int] = Field(
        default_factory=lambda: _default_category_retention(),
        description="flag category -> days, overriding flagged_days",
    )

    @field_validator("categories")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        from governance_bot.findings import Category

        unknown = sorted(set(value) - {c.value for c in Category})
        if unknown:
            raise ValueError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                             f"{', '.join(unknown)}; use one of "
                             f"{', '.join(c.value for c in Category)}")
        bad = [k for k, v in value.items() if v < 1]
        if bad:
            raise ValueError(f"{', '.join(bad)}: days must be at least 1")
        return value


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


def _default_required_settings() -> dict[str, str | bool]:
    return {"passcode": True, "waiting_room": True}


class AccessAuditSettings(_Section):
    """The weekly dual-access audit (docs/access-audit.md)."""

    enabled: bool = True
    # cron fields, in the organisation's time zone: default Monday 09:00
    day_of_week: str = "mon"
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    chase_after_hours: int = Field(default=24, ge=1)
    deadline_hours: int = Field(default=48, ge=2)
    password_max_age_days: int = Field(
        default=30, ge=0, description="0: no age limit (change on compromise, as the NCSC advises)"
    )
    require_two_factor: bool = True
    min_managers: int = Field(default=2, ge=1)
    required_settings: dict[str, str | bool] = Field(
        default_factory=lambda: _default_required_settings(),
        description="setting name -> the value the policy requires, where a platform reports it",
    )
    report_dir: Path = Path("reports")


class ToxicitySettings(_Section):
    """The Detoxify toxicity classifier (docs/classifiers-toxicity.md)."""

    enabled: bool = True
    model: Literal["original", "original-small", "unbiased", "unbiased-small", "multilingual"] = (
        "original"
    )
    checkpoint: Path | None = Field(
        default=None,
        description="a Detoxify checkpoint of your own; unset: the model store "
        "(`governance-bot models fetch`)",
    )
    huggingface_config_path: Path | None = Field(
        default=None, description="folder with the transformer config and tokenizer files"
    )
    backend: Literal["auto", "torch", "onnx"] = "auto"
    onnx_path: Path | None = Field(
        default=None, description="where the ONNX export is kept (default: beside the checkpoint)"
    )
    batch_size: int = Field(default=32, ge=1, le=1024)
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads for inference (default: every core)"
    )
    parallel_batches: bool = Field(
        default=True,
        description="ONNX: run that many batches at once, one thread each, rather than one batch "
        "at a time on every thread",
    )
    allow_fallback: bool = Field(
        default=False, description="use alt-profanity-check when no Detoxify weights load"
    )
    device: Literal["cpu"] = "cpu"


class ClassifiersSettings(_Section):
    toxicity: ToxicitySettings = Field(default_factory=ToxicitySettings)


class ConnectorEntry(BaseModel):
    """The common part of a ``[[connectors]]`` table; the rest is checked by the connector."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    account: str = Field(min_length=1)


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    organisation: OrganisationSettings = Field(default_factory=OrganisationSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    registers: RegistersSettings = Field(default_factory=RegistersSettings)
    working_hours: WorkingHoursSettings = Field(default_factory=WorkingHoursSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    audit: AccessAuditSettings = Field(default_factory=AccessAuditSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    audit_log: AuditLogSettings = Field(default_factory=AuditLogSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    classifiers: ClassifiersSettings = Field(default_factory=ClassifiersSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    connectors: list[ConnectorEntry] = Field(default_factory=list)

    # where the file was; not a setting
    source: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_config reads the GOVERNANCE_BOT_* overrides itself (to name each one in messages
        # and to report the misspelt ones), so the model takes only what it is given
        return (init_settings,)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve_path(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def database_url(self) -> str:
        url = self.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                return "sqlite:///" + str(self.resolve_path(Path(rel)))
        return url


# --- loading ------------------------------------------------------------------------------------
# Variables with our prefix that are not settings (read by other parts, or by the tests)
_NOT_SETTINGS = frozenset({
    "CONFIG", "SHARED", "TEST_PG_URL", "INSTALL_SERVICES", "MODEL_CACHE", "EMBEDDINGS_THREADS",
    "EMBEDDINGS_BACKEND",
})
# settings naming files that must exist / whose folder must exist (relative to the config file)
INPUT_PATHS = frozenset({"registers.file", "registers.learners", "registers.staff",
                         "registers.accounts", "detection.packs_dir"})
OUTPUT_PATHS = frozenset({"delivery.json_path", "classifiers.toxicity.onnx_path",
                          "audit_log.anchor_file"})
_SUPPORTED_DATABASES = ("sqlite", "postgresql")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _setting_key(loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """The setting an error is about ("detection.disabled_rules", or "connectors[0].name") and
    what is left of its location (a list index, a table key)."""
    model: Any = Config
    parts: list[str] = []
    for n, part in enumerate(loc):
        fields = getattr(model, "model_fields", None)
        if parts and parts[0] == "connectors":
            return _loc(loc[:3]), loc[3:]
        if not isinstance(part, str) or fields is None or part not in fields:
            if not parts or (isinstance(part, str) and fields is not None):
                parts.append(str(part))  # an unknown section or key: name it
                return ".".join(parts), loc[n + 1:]
            return ".".join(parts), loc[n:]
        parts.append(part)
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
        if model is None:
            return ".".join(parts), loc[n + 1:]
    return ".".join(parts) or "(top level)", ()


def _field_of(dotted: str) -> Any:
    """The pydantic FieldInfo of a dotted setting, or None."""
    model: Any = Config
    info = None
    for part in dotted.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        info = fields[part]
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
    return info


def _all_settings(model: Any = None, prefix: str = "") -> list[str]:
    """Every setting as "section.key" (nested sections included)."""
    out: list[str] = []
    for name, info in (model or Config).model_fields.items():
        if name == "source":
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_all_settings(annotation, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def env_name(dotted: str) -> str:
    """``security.encryption_keys`` -> ``GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS``."""
    return ENV_PREFIX + dotted.replace(".", "__").upper()


def _closest(name: str, candidates: list[str], prefix: str = "") -> str | None:
    """The candidate ``name`` was most likely meant to be (compared without ``prefix`` and with
    "__" read as "_", so that DATABASE_URL finds DATABASE__URL)."""
    import difflib

    def norm(text: str) -> str:
        return text.removeprefix(prefix).replace("__", "_").lower()

    by_norm = {norm(c): c for c in candidates}
    found = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.8)
    return by_norm[found[0]] if found else None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _structured(annotation: Any) -> str | None:
    """"list", "table" or None (a scalar) for a setting's type."""
    import typing

    base = _unwrap(annotation)
    origin = typing.get_origin(base)
    if origin is list or base is list:
        return "list"
    if origin is dict or base is dict or (isinstance(base, type) and issubclass(base, BaseModel)):
        return "table"
    return None


@dataclass(slots=True)
class _Sources:
    """Where each setting's value came from, to name it in messages."""

    file: str
    env: dict[str, str] = field(default_factory=dict)  # setting -> the override variable
    refs: dict[str, list[str]] = field(default_factory=dict)  # setting -> ${VARS} it used

    def name(self, key: str) -> str:
        """How to name a setting in a message: its variable, or the file and the key."""
        for setting, variable in self.env.items():
            if key == setting or key.startswith(setting + ".") or key.startswith(setting + "["):
                return f"{variable} (environment)"
        return f"{self.file}: {key}"

    def from_env(self, key: str) -> bool:
        return any(key == s or key.startswith(s + ".") or key.startswith(s + "[")
                   for s in self.env)


def _env_overrides(env: dict[str, str], referenced: set[str], problems: list[str],
                   sources: _Sources) -> dict[str, Any]:
    """``GOVERNANCE_BOT_<SECTION>__<KEY>`` variables as a nested dict of raw values. A variable
    that names no setting but looks like one (it has the ``__`` separator, or it is close to a
    setting's name) is a problem naming the closest setting: a misspelt override must never be
    silently ignored (a misspelt ENCRYPTION_KEYS would run unencrypted)."""
    import json

    settings = _all_settings()
    names = {env_name(s): s for s in settings}
    overrides: dict[str, Any] = {}
    for variable in sorted(env):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or variable in referenced:
            continue
        rest = upper[len(ENV_PREFIX):]
        if rest in _NOT_SETTINGS:
            continue
        dotted = names.get(upper)
        if dotted is None and rest.lower() in ("connectors",):
            dotted = "connectors"
        if dotted is None:
            close = _closest(upper, list(names), ENV_PREFIX)
            if "__" in rest or close is not None:
                fix = (f"did you mean {close}? Rename it" if close else
                       "remove it (config.example.toml lists every setting; the variable is "
                       "GOVERNANCE_BOT_<SECTION>__<KEY>)")
                problems.append(f"{variable} (environment): not a setting. Fix: {fix}.")
            else:  # nothing like a setting: said, not refused (other tools share the prefix)
                log.warning("%s (environment) is not a setting of governance-bot and is "
                            "ignored (settings are GOVERNANCE_BOT_<SECTION>__<KEY>; "
                            "config.example.toml lists them)", variable)
            continue
        value: Any = env[variable]
        kind = "list" if dotted == "connectors" else _structured(_field_of(dotted).annotation)
        if kind is not None and value.strip():
            try:
                value = json.loads(value)
            except ValueError:
                if kind == "list" and dotted != "connectors":
                    # comma-separated text: GOVERNANCE_BOT_DETECTION__DISABLED_RULES=tone,images
                    value = [v.strip() for v in value.split(",") if v.strip()]
                else:
                    example = '[{"name": "...", ...}]' if kind == "list" else '{"key": "value"}'
                    problems.append(f"{variable} (environment): not JSON. Fix: give a JSON "
                                    f"{'list' if kind == 'list' else 'table'} like {example}.")
                    continue
        cur = overrides
        parts = dotted.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
        sources.env[dotted] = variable
    return overrides


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _fix(err: Any, key: str, sources: _Sources) -> str:
    """What to do about one validation error, in the operator's words."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    message = str(err.get("msg", ""))
    if "Fix:" in message:
        return ""
    where = "unset the variable" if sources.from_env(key) else "remove the line"
    info = _field_of(key) if "[" not in key else None
    default = ""
    if info is not None and not info.is_required():
        value = info.get_default(call_default_factory=True)
        if isinstance(value, SecretStr) or value is None:
            default = f"; or {where} to leave it unset"
        else:
            import json

            shown = json.dumps(str(value) if isinstance(value, Path) else value, default=str)
            default = f"; or {where} to use the default ({shown})"
    if kind == "extra_forbidden":
        name = key.rsplit(".", 1)[-1]
        section = key.rsplit(".", 1)[0] if "." in key else ""
        candidates = [s.rsplit(".", 1)[-1] for s in _all_settings()
                      if s.rsplit(".", 1)[0] == section] if section else list(Config.model_fields)
        close = _closest(name, candidates)
        return (f"did you mean {close}? " if close else "") + \
            "Remove it or check the spelling (config.example.toml lists every setting)"
    if kind == "missing":
        return "add it"
    if kind == "literal_error":
        return f"use one of {ctx.get('expected', 'the allowed values')}{default}"
    if kind in ("bool_parsing", "bool_type"):
        return f"use true or false{default}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"use a whole number{default}"
    if kind in ("float_parsing", "float_type"):
        return f"use a number{default}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"use a number of at least {bound}{default}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"use a number of at most {bound}{default}"
    if kind in ("string_type",):
        return f'use text in quotes, e.g. {key.rsplit(".", 1)[-1]} = "..."{default}'
    if kind in ("list_type", "too_short"):
        return f'use a list, e.g. ["a", "b"]{default}'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"use a table{default}"
    if kind in ("path_type",):
        return f"use a file path in quotes{default}"
    if kind.startswith("date") or kind.startswith("datetime"):
        return f"use a date like 2026-09-03{default}"
    if kind == "string_too_short":
        return f"it must not be empty{default}"
    if kind == "value_error" and message.endswith("is empty"):
        return f"give a value{default}"
    return f"correct it (config.example.toml explains it){default}"


def _validation_problems(exc: ValidationError, sources: _Sources) -> list[str]:
    """One line per setting (a setting with several errors, e.g. two list entries, gets one
    line naming each), each with the fix."""
    grouped: dict[str, list[tuple[tuple[Any, ...], Any]]] = {}
    for err in exc.errors():
        key, rest = _setting_key(tuple(err["loc"]))
        grouped.setdefault(key, []).append((rest, err))
    out = []
    for key, errors in grouped.items():
        parts = []
        fixes: list[str] = []
        for n, (rest, err) in enumerate(errors):
            msg = str(err["msg"]).removeprefix("Value error, ")
            # where inside the setting: slack.rota[0].hours (pydantic's union branch names,
            # which hold brackets, are not places)
            shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                            for p in rest if not (isinstance(p, str) and "[" in p))
            if n == 0:
                key_shown = key + shown
            elif shown:
                msg = f"{shown}: {msg}"
            if msg not in parts:
                parts.append(msg)
            fix = _fix(err, key, sources)
            if fix and fix not in fixes:
                fixes.append(fix)
        refs = sources.refs.get(key)
        note = ""
        if refs and any("is empty" in p for p in parts):
            note = f" ({', '.join('${' + r + '}' for r in refs)} is empty)"
        line = f"{sources.name(key_shown)}: {'; '.join(parts)}{note}"
        if fixes:
            line += ". Fix: " + "; ".join(fixes) + "."
        out.append(line)
    return out


def _expand(value: Any, path: str, env: dict[str, str], problems: list[str], where: str,
            secret_paths: set[str], refs: dict[str, list[str]]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else k, env, problems, where, secret_paths,
                           refs)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", env, problems, where, secret_paths, refs)
                for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            refs.setdefault(path, []).append(name)
            if name not in env:
                problems.append(
                    f"{where}: {path}: environment variable {name} is not set. "
                    f"Fix: export {name}=... before starting governance-bot."
                )
                return ""
            return env[name]

        if _ENV_REF.fullmatch(value.strip()):
            secret_paths.add(path)
        return _ENV_REF.sub(sub, value)
    return value


def _referenced(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_referenced(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_referenced(v) for v in value)) if value else set()
    if isinstance(value, str):
        return set(_ENV_REF.findall(value))
    return set()


def _secret_fields(model: BaseModel, prefix: str) -> list[str]:
    out = []
    for name, value in model:
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, SecretStr):
            out.append(path)
        elif isinstance(value, BaseModel):
            out.extend(_secret_fields(value, path))
    return out


def _read(path: Path | str) -> tuple[dict[str, Any], Path]:
    """The TOML file as a dict; every way of not being one is a ConfigError with the fix."""
    where = str(path)
    source = Path(path).resolve()
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError([
            f"{where}: no such file. Fix: create one with `governance-bot init --dir DIR`, or "
            "give the right path with --config."
        ]) from None
    except IsADirectoryError:
        raise ConfigError([
            f"{where}: is a folder, not a config file. Fix: give the file inside it, e.g. "
            f"--config {Path(where) / 'config.toml'}."
        ]) from None
    except PermissionError:
        raise ConfigError([
            f"{where}: cannot be read by this user. Fix: let the service's user read it "
            "(e.g. chmod 0644; keep secrets in the environment, not in the file)."
        ]) from None
    except OSError as exc:
        raise ConfigError([f"{where}: cannot be read ({exc.strerror or exc}). Fix: check the "
                           "path given with --config."]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([
            f"{where}: line {line}: not UTF-8 text (byte {exc.start}). Fix: save the file as "
            "UTF-8 (most editors offer it under \"Save as\" / encoding)."
        ]) from None
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}. Fix: correct the line it names "
                           "(config.example.toml shows the syntax)."]) from None


def load_config(path: Path | str | None, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file (None: defaults plus the environment).

    Every problem is collected and raised at once as a :class:`ConfigError`: one line per
    setting, naming the file and key (or the ``GOVERNANCE_BOT_*`` variable it came from), what is
    wrong and the fix."""
    env = dict(os.environ) if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    source: Path | None = None
    where = "(defaults)"
    if path is not None:
        where = str(path)
        raw, source = _read(path)
    sources = _Sources(file=where)
    secret_paths: set[str] = set()
    expanded = _expand(raw, "", env, problems, where, secret_paths, sources.refs)
    overrides = _env_overrides(env, _referenced(raw), problems, sources)
    merged = _merge(expanded, overrides)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        problems.extend(_validation_problems(exc, sources))
        raise ConfigError(problems) from None
    config.source = source
    for secret in _secret_fields(config, ""):
        value = _get(raw, secret)
        if value not in (None, "") and secret not in secret_paths and secret not in sources.env:
            problems.append(
                f"{where}: {secret}: secrets must not be written in the file. "
                f"Fix: write {secret.rsplit('.', 1)[-1]} = \"${{SOME_ENV_VAR}}\" and set that "
                "variable in the environment."
            )
    problems.extend(_check_database(config, raw, sources))
    problems.extend(_check_keys(config, sources))
    problems.extend(_check_paths(config, sources))
    problems.extend(_check_rules(config, sources))
    problems.extend(_check_connectors(config, merged, raw, where, secret_paths))
    problems.extend(_check_console(config, sources))
    if problems:
        raise ConfigError(problems)
    return config


def _check_database(config: Config, raw: dict[str, Any], sources: _Sources) -> list[str]:
    """The URL names a database this version can use, with its password (if any) from the
    environment, and (SQLite) a folder that exists and can be written."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    name = sources.name("database.url")
    url_text = config.database_url
    example = ("Fix: use sqlite:///governance-bot.db (a file beside the config) or "
               "postgresql+psycopg://USER:${DB_PASSWORD}@HOST/DATABASE.")
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        return [f"{name}: not a database URL. {example}"]
    backend = url.get_backend_name()
    if backend not in _SUPPORTED_DATABASES:
        return [f"{name}: {backend} databases are not supported (only SQLite and "
                f"PostgreSQL). {example}"]
    driver = url.get_driver_name()
    if backend == "postgresql" and driver != "psycopg":
        return [f"{name}: the PostgreSQL driver {driver!r} is not the one governance-bot "
                "installs. Fix: write the URL as postgresql+psycopg://... (and install the "
                "postgres extra: pip install \"governance-bot[postgres]\")."]
    problems = []
    literal = _get(raw, "database.url")
    if url.password and not sources.from_env("database.url") and isinstance(literal, str) \
            and str(url.password) in literal:
        problems.append(
            f"{name}: the password is written in the file. Fix: write it as an environment "
            "reference, e.g. url = \"postgresql+psycopg://USER:${DB_PASSWORD}@HOST/DB\" (or set "
            f"{env_name('database.url')}), and set that variable in the service's environment.")
    if backend == "sqlite" and url.database and url.database != ":memory:":
        file = Path(url.database)
        folder = file.parent
        if file.is_dir():
            problems.append(f"{name}: {file} is a folder. Fix: name a database file inside it, "
                            f"e.g. sqlite:///{file / 'governance-bot.db'}.")
        elif not folder.is_dir():
            problems.append(f"{name}: the folder {folder} does not exist. Fix: create it "
                            f"(mkdir -p {folder}) or point the URL at an existing folder.")
        elif not os.access(folder, os.W_OK | os.X_OK) or (
                file.exists() and not os.access(file, os.R_OK | os.W_OK)):
            problems.append(f"{name}: {file if file.exists() else folder} cannot be written by "
                            "this user. Fix: give the service's user write access to the folder "
                            "(SQLite also writes -wal and -shm files beside the database) or "
                            "choose a folder it owns.")
    return problems


def _check_keys(config: Config, sources: _Sources) -> list[str]:
    """Keys given must be keys: an empty or invalid key is an error, never "encryption off"."""
    setting = config.security.encryption_keys
    if setting is None:
        return []
    name = sources.name("security.encryption_keys")
    refs = sources.refs.get("security.encryption_keys")
    keys = config.security.keys()
    fix = ("Fix: set it to keys from `governance-bot keys generate` (comma-separated, newest "
           "first), or remove the setting to run without encryption at rest")
    if not keys:
        via = f" ({', '.join('${' + r + '}' for r in refs)} is empty)" if refs else ""
        return [f"{name}: is empty{via}, which would switch encryption off. {fix}."]
    from cryptography.fernet import Fernet

    bad = []
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            bad.append(n)
    if bad:
        which = ", ".join(f"key {n}" for n in bad)
        return [f"{name}: {which} of {len(keys)} is not a valid key (a key is 44 characters of "
                f"URL-safe base64). {fix}."]
    return []


def _check_paths(config: Config, sources: _Sources) -> list[str]:
    problems = []
    for dotted in sorted(INPUT_PATHS | OUTPUT_PATHS):
        value: Any = config
        for part in dotted.split("."):
            value = getattr(value, part, None)
        if not isinstance(value, Path):
            continue
        path = config.resolve_path(value)
        name = sources.name(dotted)
        if dotted in INPUT_PATHS and not path.exists():
            problems.append(f"{name}: {path} does not exist. Fix: correct the path (relative "
                            "paths are relative to the config file's folder) or remove the "
                            "setting.")
        elif dotted in OUTPUT_PATHS and not path.parent.is_dir():
            problems.append(f"{name}: the folder {path.parent} does not exist. Fix: create it "
                            f"(mkdir -p {path.parent}) or correct the path.")
    return problems


def _check_rules(config: Config, sources: _Sources) -> list[str]:
    from rules.engine import DETECTORS

    unknown = [r for r in config.detection.disabled_rules if r not in DETECTORS]
    if not unknown:
        return []
    name = sources.name("detection.disabled_rules")
    close = [c for c in (_closest(u, list(DETECTORS)) for u in unknown) if c]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return [f"{name}: unknown rule{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}. Fix: {hint}use rule ids from: "
            f"{', '.join(DETECTORS)}."]


def _check_console(config: Config, sources: _Sources) -> list[str]:
    """The console's development sign-in lets anyone pick a member of staff: it is for the
    bundled example on one's own machine, never for a service others can reach."""
    import ipaddress

    host = config.service.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if config.console.dev_login and not loopback:
        return [f"{sources.name('console.dev_login')}: refused because the service is bound to "
                f"{host}, "
                "not a loopback address. Fix: set dev_login = false (sign in through "
                "[console.oidc]), or bind [service] host = \"127.0.0.1\" on a development "
                "machine."]
    return []


def _get(data: dict[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _check_connectors(config: Config, expanded: dict[str, Any], raw: dict[str, Any], where: str,
                      secret_paths: set[str]) -> list[str]:
    from connectors.registry import available, load

    problems: list[str] = []
    seen: set[str] = set()
    known = available()
    for i, entry in enumerate(config.connectors):
        loc = f"connectors[{i}] ({entry.name})"
        if entry.name in seen:
            problems.append(f"{where}: {loc}: name {entry.name!r} is used twice. Fix: rename one.")
        seen.add(entry.name)
        if entry.type not in known:
            problems.append(
                f"{where}: {loc}.type: unknown connector {entry.type!r}. "
                f"Fix: use one of {', '.join(known)}."
            )
            continue
        try:
            cls = load(entry.type)
            settings = cls.Settings.model_validate(expanded["connectors"][i])
        except ValidationError as exc:
            for err in exc.errors():
                fix = _fix(err, f"connectors[{i}]", _Sources(where))
                problems.append(
                    f"{where}: {loc}.{_loc(err['loc'])}: {err['msg']}"
                    + (f". Fix: {fix}" if fix else "")
                )
            continue
        except Exception as exc:  # a plugin that fails to import
            problems.append(f"{where}: {loc}: connector {entry.type!r} cannot be loaded: {exc}")
            continue
        for name, value in settings:
            if isinstance(value, SecretStr) and f"connectors[{i}].{name}" not in secret_paths:
                problems.append(
                    f"{where}: {loc}.{name}: secrets must not be written in the file. "
                    f"Fix: write {name} = \"${{SOME_ENV_VAR}}\" and set that variable."
                )
    return problems


def connector_settings(config: Config) -> list[Any]:
    """Each ``[[connectors]]`` entry validated by its connector's own settings model."""
    from connectors.registry import load

    out = []
    for entry in config.connectors:
        cls = load(entry.type)
        data = entry.model_dump()
        settings = cls.Settings.model_validate(data)
        for name, value in settings:
            if isinstance(value, Path) and not value.is_absolute():
                settings = settings.model_copy(update={name: config.resolve_path(value)})
        out.append(settings)
    return out
