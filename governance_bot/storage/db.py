"""Engine, sessions and schema checks. SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["Database", "SchemaOutdated"]

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaOutdated(Exception):
    """The database schema is older than this version of governance-bot expects."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _create_private(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite creates it
    with the process's umask (often 0644: the whole machine could read children's data). SQLite
    gives the -wal and -shm files the database file's permissions."""
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:  # an unparseable URL is reported by the config check
        return
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:  # unwritable: SQLAlchemy reports it when it connects
        log.debug("could not create %s ahead of SQLite: %s", path, exc)


class Database:
    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            _create_private(url)
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    # --- schema -------------------------------------------------------------------------------
    def _alembic_config(self) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["engine"] = self.engine
        return cfg

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_empty(self) -> bool:
        return not inspect(self.engine).get_table_names()

    def upgrade(self) -> tuple[str | None, str | None]:
        """Bring the schema to the newest revision. Returns (before, after)."""
        from alembic import command

        before = self.current_revision()
        command.upgrade(self._alembic_config(), "head")
        return before, self.current_revision()

    def ensure_schema(self, create_if_empty: bool = True) -> None:
        """Create a brand-new database; refuse an outdated one with what to run."""
        current, head = self.current_revision(), self.head_revision()
        if current == head:
            self.check_encryption()
            return
        if current is None and self.is_empty() and create_if_empty:
            log.info("new database: creating the schema (revision %s)", head)
            self.upgrade()
            self.check_encryption()
            return
        raise SchemaOutdated(
            f"the database schema is at revision {current or 'none'} but this version of "
            f"governance-bot needs {head}. Fix: run `governance-bot db upgrade --config ...` "
            "(back up the database first)."
        )

    def check_encryption(self) -> str:
        """Raise ``crypto.KeyError_`` (with the fix) if this database holds encrypted data and no
        key is configured, or keys that cannot read it; otherwise say how encryption stands.
        Called before anything is read or written (``ensure_schema``), so no row is ever written
        in clear beside encrypted ones."""
        from governance_bot.storage.keyring import check_encryption

        with self.session() as session:
            return check_encryption(session)

    def dispose(self) -> None:
        self.engine.dispose()
