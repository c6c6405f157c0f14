"""Registers: CSV/TOML import is idempotent and audited; people resolve to their roles."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from governance_bot.items import Item, Person, Role
from governance_bot.registers import RegisterError, RegisterIndex, read_csv
from governance_bot.runtime import import_register_files
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

DATA = Path(__file__).parent / "data"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'gb.db'}")
    database.upgrade()
    return database


def count(db: Database, table: type) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def test_importing_the_registers_twice_is_idempotent_and_the_audit_log_records_the_changes(
    db: Database, tmp_path: Path
):
    files = {"learners": DATA / "learners.csv", "staff": DATA / "staff.csv",
             "accounts": DATA / "accounts.csv"}
    first = import_register_files(db, actor="tester", **files)
    assert first.added == {"learners": 2, "staff": 3, "accounts": 1}
    events_after_first = count(db, m.AuditEvent)
    assert events_after_first == 6

    second = import_register_files(db, actor="tester", **files)
    assert second.added == {"learners": 0, "staff": 0, "accounts": 0}
    assert second.unchanged == {"learners": 2, "staff": 3, "accounts": 1}
    assert not second.changed
    assert (count(db, m.Learner), count(db, m.Staff), count(db, m.Account)) == (2, 3, 1)
    assert count(db, m.AuditEvent) == events_after_first  # nothing changed, nothing logged

    changed = tmp_path / "learners.csv"
    changed.write_text((DATA / "learners.csv").read_text().replace(
        "T101,Reuben,Okonjo,Reu,2009-10-30,reuben.okonjo@students.example.org,no",
        "T101,Reuben,Okonjo,Reu,2009-10-30,reuben.okonjo@students.example.org,yes"))
    third = import_register_files(db, actor="registrar", learners=changed)
    assert third.updated == {"learners": 1}
    with db.session() as s:
        last = s.execute(select(m.AuditEvent).order_by(m.AuditEvent.seq.desc())).scalars().first()
        assert last is not None
        assert (last.actor, last.action, last.subject) == (
            "registrar", "register.learners.updated", "learners:T101")
        assert last.data["fields"] == ["photo_consent"]
        # the audit log names records and fields, never learners' details
        assert "Reuben" not in str(last.data)
        assert auditlog.verify(s).ok


def test_a_bad_register_row_is_reported_with_file_and_line_and_nothing_is_imported(
    db: Database, tmp_path: Path
):
    bad = tmp_path / "learners.csv"
    bad.write_text(
        "learner_id,first_name,last_name,date_of_birth,photo_consent\n"
        "X1,Ann,Lee,2010-01-01,yes\n"
        "X2,,Moss,2010-13-01,perhaps\n"
    )
    with pytest.raises(RegisterError) as info:
        import_register_files(db, learners=bad)
    joined = "\n".join(info.value.problems)
    assert f"{bad}:3: first_name" in joined
    assert f"{bad}:3: date_of_birth" in joined
    assert f"{bad}:3: photo_consent" in joined
    assert count(db, m.Learner) == 0


def test_an_unknown_column_is_named_with_the_accepted_ones(tmp_path: Path):
    bad = tmp_path / "staff.csv"
    bad.write_text("staff_id,name,emial\nS1,A B,a@b\n")
    _rows, problems = read_csv(bad, "staff")
    assert "unknown column(s) emial" in problems[0] and "email" in problems[0]


def test_authors_and_recipients_resolve_to_their_roles(example_registers: RegisterIndex):
    item = Item.model_validate({
        "id": "m1", "platform": "teams", "account": "brookfield-teams", "kind": "chat_message",
        "author": {"email": "D.Mensah@brookfield.example.org"},
        "recipients": [{"handle": "@MAISIE.FB"}, {"handle": "@someone_else"}, {}],
        "created_at": "2026-11-20T10:00:00Z",
    })
    resolved = example_registers.resolve(item)
    assert (resolved.author.role, resolved.author.register_id) == (Role.staff, "S006")
    roles = [(p.role, p.register_id) for p in resolved.recipients]
    assert roles == [(Role.learner, "L002"), (Role.public, None), (Role.unknown, None)]


def test_an_author_whose_id_is_the_accounts_own_id_is_the_organisation(
    example_registers: RegisterIndex,
):
    org = example_registers.resolve_person(Person(id="104000000001"), "brookfield-facebook")
    assert org.role == Role.organisation
    # the same id on another account is not that account's own
    other = example_registers.resolve_person(Person(id="104000000001"), "brookfield-x")
    assert other.role == Role.public


def test_a_staff_members_personal_handle_resolves_to_staff_marked_personal(
    example_registers: RegisterIndex,
):
    person = example_registers.resolve_person(Person(handle="@dan_mensah_88"), "brookfield-x")
    assert person.role == Role.staff and person.register_id == "S006"
    assert getattr(person, "personal_account", False) is True


def test_safeguarding_contacts_are_the_dsl_then_deputies(example_registers: RegisterIndex):
    assert [s.staff_id for s in example_registers.safeguarding_contacts()] == [
        "S001", "S002", "S003"]
    # a leaver is not a current manager
    managers = example_registers.managers("brookfield-instagram")
    assert [s.staff_id for s in managers if s.active] == ["S005"]
