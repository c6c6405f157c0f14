"""Configuration: one TOML file, validated as a whole, every problem reported at once.

* Secrets are written only as ``${ENV_VAR}`` references; a missing variable is an error naming it.
* Any value can be overridden by ``GOVERNANCE_BOT_<SECTION>__<KEY>``, e.g.
  ``GOVERNANCE_BOT_DATABASE__URL``.
* Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Config", "ConfigError", "load_config"]

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


class OrganisationSettings(_Section):
    name: str = "Our organisation"
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
        # the environment overrides the file
        return (env_settings, init_settings)

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


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_FIXES = {
    "extra_forbidden": "remove it or check the spelling (config.example.toml lists every key)",
    "missing": "add it",
    "literal_error": "use one of the allowed values",
    "bool_parsing": "use true or false",
    "int_parsing": "use a whole number",
    "date_from_datetime_parsing": "use a date like 2026-09-03",
}


def _expand(value: Any, path: str, env: dict[str, str], problems: list[str], where: str,
            secret_paths: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else k, env, problems, where, secret_paths)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", env, problems, where, secret_paths)
                for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
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


def _secret_fields(model: BaseModel, prefix: str) -> list[str]:
    out = []
    for name, value in model:
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, SecretStr):
            out.append(path)
        elif isinstance(value, BaseModel):
            out.extend(_secret_fields(value, path))
    return out


def load_config(path: Path | str | None, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file (None: defaults plus the environment)."""
    env = dict(os.environ) if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    where = "(defaults)"
    source: Path | None = None
    if path is not None:
        source = Path(path).resolve()
        where = str(path)
        try:
            with source.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError([
                f"{where}: no such file. Fix: create one with `governance-bot init --dir DIR`."
            ]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None
    secret_paths: set[str] = set()
    expanded = _expand(raw, "", env, problems, where, secret_paths)
    old_env = os.environ.copy()
    try:
        if env is not os.environ:
            os.environ.clear()
            os.environ.update(env)
        config = Config(**expanded)
    except ValidationError as exc:
        for err in exc.errors():
            fix = _FIXES.get(err["type"], "")
            problems.append(
                f"{where}: {_loc(err['loc'])}: {err['msg']}" + (f". Fix: {fix}" if fix else "")
            )
        raise ConfigError(problems) from None
    finally:
        if env is not os.environ:
            os.environ.clear()
            os.environ.update(old_env)
    config.source = source
    for secret in _secret_fields(config, ""):
        value = _get(raw, secret)
        env_key = ENV_PREFIX + secret.replace(".", "__").upper()
        if value is not None and secret not in secret_paths and env_key not in env:
            problems.append(
                f"{where}: {secret}: secrets must not be written in the file. "
                f"Fix: write {secret.rsplit('.', 1)[-1]} = \"${{SOME_ENV_VAR}}\" and set that "
                "variable in the environment."
            )
    problems.extend(_check_connectors(config, expanded, raw, where, secret_paths))
    problems.extend(_check_console(config, where))
    if problems:
        raise ConfigError(problems)
    return config


def _check_console(config: Config, where: str) -> list[str]:
    """The console's development sign-in lets anyone pick a member of staff: it is for the
    bundled example on one's own machine, never for a service others can reach."""
    import ipaddress

    host = config.service.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if config.console.dev_login and not loopback:
        return [f"{where}: console.dev_login: refused because the service is bound to {host}, "
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
                fix = _FIXES.get(err["type"], "")
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
