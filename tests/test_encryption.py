"""Message text, media and learner details are encrypted at rest with a key from the
environment, and keys can be rotated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from governance_bot.config import Config
from governance_bot.items import Item
from governance_bot.registers import read_toml
from governance_bot.runtime import Runtime
from governance_bot.storage import crypto
from governance_bot.storage.rotation import rotate_all
from tests.conftest import EXAMPLES

SECRET_TEXT = "Meet me behind the sports hall after school"
LEARNERS = len(read_toml(EXAMPLES / "registers.toml").learners)
KEYS_REF = '[security]\nencryption_keys = "${GB_KEYS}"\n'


@pytest.fixture(autouse=True)
def no_keys_after() -> Iterator[None]:
    yield
    crypto.configure(None)


def raw_dump(rt: Runtime) -> str:
    with rt.db.engine.connect() as conn:
        parts = []
        for table in ("item_versions", "register_learners", "register_staff", "findings"):
            parts.extend(str(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
        return "\n".join(parts)


def ingest_one(rt: Runtime) -> None:
    rt.pipeline.process(Item.model_validate({
        "id": "m1", "platform": "teams", "account": "brookfield-teams", "kind": "chat_message",
        "author": {"email": "d.mensah@brookfield.example.org"},
        "recipients": [{"email": "maisie.oconnell@students.brookfield.example.org"}],
        "created_at": datetime(2026, 11, 18, 10, 0, tzinfo=UTC).isoformat(),
        "text": SECRET_TEXT}))


def test_without_keys_the_database_holds_plain_json(make_config: Callable[..., Config]):
    rt = Runtime.from_config(make_config(), with_connectors=False)
    ingest_one(rt)
    assert SECRET_TEXT in raw_dump(rt)


def test_with_a_key_no_message_text_or_learner_detail_is_readable_in_the_database(
    make_config: Callable[..., Config],
):
    key = crypto.generate_key()
    config = make_config(KEYS_REF, env={"GB_KEYS": key})
    rt = Runtime.from_config(config, with_connectors=False)
    ingest_one(rt)
    dump = raw_dump(rt)
    for clear in (SECRET_TEXT, "Maisie", "O'Connell", "maisie.oconnell", "Jayden", "2010-03-14",
                  "Helen Okafor"):
        assert clear not in dump
    # and the application reads it back
    with rt.db.session() as s:
        data = s.execute(text("SELECT id FROM item_versions")).scalar_one()
        from governance_bot.storage.models import ItemVersion

        version = s.get(ItemVersion, data)
        assert version is not None and version.data["text"] == SECRET_TEXT
    assert len(rt.registers.learners) == LEARNERS


def test_a_guardians_contact_recorded_with_a_removal_is_encrypted_and_rotation_covers_old_rows(
    make_config: Callable[..., Config],
):
    from governance_bot.storage import models as m

    contact = "sarah.oconnell@example.net"
    rt = Runtime.from_config(make_config(), with_connectors=False)
    ingest_one(rt)

    def inform(session: Any) -> None:
        flag = session.execute(select(m.Flag)).scalars().first()
        decision = m.FlagDecision(flag_id=flag.id, action="remove", staff_id="S001", data={})
        session.add(decision)
        session.flush()
        session.add(m.InformedPerson(flag_id=flag.id, decision_id=decision.id,
                                     relation="guardian", register_id="L002", contact=contact,
                                     method="email", informed_by="S001"))

    with rt.db.session() as s:  # written before encryption was switched on: plain
        inform(s)
    key = crypto.generate_key()
    crypto.configure([key])
    with rt.db.session() as s:  # written with a key: encrypted
        inform(s)

    def raw_contacts() -> list[str]:
        with rt.db.engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT contact FROM flag_informed"))]

    stored = raw_contacts()
    assert stored[0] == contact and contact not in stored[1]
    assert rotate_all(rt.db)["flag_informed.contact"] == 2
    assert not any(contact in value for value in raw_contacts())  # the old row too
    with rt.db.session() as s:
        assert [p.contact for p in s.execute(select(m.InformedPerson)).scalars()] == [contact] * 2


def test_rotation_re_encrypts_everything_with_the_new_key_so_the_old_key_can_go(
    make_config: Callable[..., Config],
):
    old, new = crypto.generate_key(), crypto.generate_key()
    rt = Runtime.from_config(make_config(KEYS_REF, env={"GB_KEYS": old}),
                             with_connectors=False)
    ingest_one(rt)
    crypto.configure([new, old])
    counts = rotate_all(rt.db)
    assert counts["item_versions.data"] == 1 and counts["register_learners.data"] == LEARNERS
    crypto.configure([new])  # the old key is gone
    from governance_bot.register_store import load_registers

    with rt.db.session() as s:
        assert len(load_registers(s).learners) == LEARNERS
    crypto.configure([old])
    with pytest.raises(crypto.KeyError_, match="keys rotate"), rt.db.session() as s:
        load_registers(s)


def test_encrypted_data_without_a_key_is_a_clear_error(make_config: Callable[..., Config]):
    key = crypto.generate_key()
    rt = Runtime.from_config(make_config(KEYS_REF, env={"GB_KEYS": key}),
                             with_connectors=False)
    crypto.configure(None)
    from governance_bot.register_store import load_registers

    with pytest.raises(crypto.KeyError_, match="ENCRYPTION_KEYS"), rt.db.session() as s:
        load_registers(s)


def test_a_malformed_key_is_refused():
    with pytest.raises(crypto.KeyError_, match="keys generate"):
        crypto.configure(["not-a-key"])
