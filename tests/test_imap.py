"""Email over IMAP, against a real Dovecot (tests/imap_server.py).

Policy: staff messages to learners are checked on every channel, so every mail in a staff or
journaling mailbox must be read once: not lost when the server rebuilds a mailbox or the network
drops, not read twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from imapclient import IMAPClient
from pydantic import ValidationError

from connectors.base import FatalError, RetriableError, SkippableRecord
from connectors.imap import ImapConnector, ImapSettings, parse_message
from connectors.registry import load
from governance_bot.items import ItemKind, Role
from governance_bot.registers import RegisterIndex, read_toml
from tests.contract.harness import SleepRecorder
from tests.imap_server import CuttingProxy, DovecotServer
from tests.shared import REPO

TUTOR = "d.mensah@brookfield.example.org"
TUTOR_PERSONAL = "danmensah88@gmail.example.com"
LEARNER = "jayden.price@students.brookfield.example.org"
SECOND_STAFF = "s.carrington@brookfield.example.org"
PDF = b"%PDF-1.4\n% an invented timetable\n" + bytes(range(256)) * 4


def make_mail(n: int, *, sender: str = TUTOR, to: str = LEARNER, cc: str | None = None,
              subject: str | None = None, body: str | None = None, html: str | None = None,
              attachment: bytes | None = None, references: list[str] | None = None,
              when: datetime | None = None, message_id: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Daniel Mensah <{sender}>"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject or f"Session reminder {n}"
    msg["Date"] = format_datetime(when or datetime(2025, 3, 4, 9, n % 60, tzinfo=UTC))
    msg["Message-ID"] = message_id or f"<r{n}-{uuid.uuid4().hex[:8]}@brookfield.example.org>"
    if references:
        msg["In-Reply-To"] = f"<{references[-1]}>"
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg.set_content(body or f"Your session {n} is on Tuesday at 10:00 in room B{n}.")
    if html:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf",
                           filename="timetable.pdf")
    return msg.as_bytes()


BROKEN_MIME = (
    b"From: Daniel Mensah <d.mensah@brookfield.example.org>\r\n"
    b"To: jayden.price@students.brookfield.example.org\r\n"
    b"Subject: broken\r\nMessage-ID: <broken-1@brookfield.example.org>\r\n"
    b"Date: Tue, 04 Mar 2025 09:30:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never-used\"\r\n\r\n"
    b"SECRET-LEARNER-TEXT this body has no boundary at all\r\n"
)


class Mailbox:
    """A fresh folder on the Dovecot server, filled over IMAP APPEND like a mail server would."""

    def __init__(self, server: DovecotServer, user: str = "journal"):
        self.server = server
        self.user = user
        self.folder = f"T{uuid.uuid4().hex[:10]}"
        self.admin = self._login()
        self.admin.create_folder(self.folder)
        self.waits = SleepRecorder()  # the connector's pauses between reconnects, not waited

    def _login(self) -> IMAPClient:
        client = IMAPClient(self.server.host, port=self.server.port, ssl=False)
        client.login(self.user, self.server.password)
        return client

    def append(self, *messages: bytes) -> None:
        for raw in messages:
            self.admin.append(self.folder, raw)

    def uidvalidity(self) -> int:
        return int(self.admin.folder_status(self.folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def rebuild(self, *messages: bytes) -> None:
        """Delete and recreate the folder (as a restore would): a new UIDVALIDITY."""
        self.admin.delete_folder(self.folder)
        self.admin.create_folder(self.folder)
        self.append(*messages)

    def connector(self, port: int | None = None, **options: object) -> ImapConnector:
        settings = ImapSettings.model_validate({
            "name": "journal-mail", "type": "imap", "account": "brookfield-email",
            "host": self.server.host, "port": port or self.server.port, "security": "none",
            "username": self.user, "password": self.server.password,
            "folders": [self.folder], "timeout_seconds": 5, **options,
        })
        return ImapConnector(settings, sleep=self.waits)

    def close(self) -> None:
        self.admin.logout()


@pytest.fixture
def mailbox(dovecot_server: DovecotServer) -> Iterator[Mailbox]:
    box = Mailbox(dovecot_server)
    yield box
    box.close()


def ids(result_items: list) -> list[str]:
    return [i.id for i in result_items]


# -- incremental reading ---------------------------------------------------------------------


def test_each_mail_is_read_once_and_later_polls_read_only_new_mail(mailbox: Mailbox) -> None:
    first = [make_mail(n) for n in range(3)]
    mailbox.append(*first)
    conn = mailbox.connector()
    try:
        r1 = conn.fetch(None)
        assert len(r1.items) == 3
        assert len(set(ids(r1.items))) == 3
        mailbox.append(make_mail(10), make_mail(11))
        r2 = conn.fetch(r1.cursor)
        assert [i.text.splitlines()[0] for i in r2.items] == [
            "Session reminder 10", "Session reminder 11"]
        r3 = conn.fetch(r2.cursor)
        assert r3.items == []
        assert r3.problems == []
    finally:
        conn.close()


def test_reading_does_not_mark_staff_mail_as_read(mailbox: Mailbox) -> None:
    mailbox.append(make_mail(1))
    conn = mailbox.connector()
    try:
        assert len(conn.fetch(None).items) == 1
    finally:
        conn.close()
    mailbox.admin.select_folder(mailbox.folder, readonly=True)
    flags = mailbox.admin.get_flags(mailbox.admin.search())
    assert all(b"\\Seen" not in f for f in flags.values())


def test_the_connector_is_registered_as_imap() -> None:
    assert load("imap") is ImapConnector


# -- UIDVALIDITY --------------------------------------------------------------------------------


def test_a_rebuilt_mailbox_new_uidvalidity_loses_nothing_and_repeats_nothing(
    mailbox: Mailbox,
) -> None:
    old = [make_mail(n) for n in range(4)]
    mailbox.append(*old)
    conn = mailbox.connector()
    try:
        r1 = conn.fetch(None)
        assert len(r1.items) == 4
        before = mailbox.uidvalidity()
        new = [make_mail(20), make_mail(21)]
        # the restored mailbox holds the old mail (in another order) plus mail that arrived since
        mailbox.rebuild(old[2], new[0], old[0], old[3], new[1], old[1])
        assert mailbox.uidvalidity() != before
        r2 = conn.fetch(r1.cursor)
        assert sorted(i.text.splitlines()[0] for i in r2.items) == [
            "Session reminder 20", "Session reminder 21"]
        r3 = conn.fetch(r2.cursor)
        assert r3.items == []
        mailbox.append(make_mail(22))
        assert [i.text.splitlines()[0] for i in conn.fetch(r3.cursor).items] == [
            "Session reminder 22"]
    finally:
        conn.close()


def test_a_deleted_uid_list_new_uidvalidity_loses_nothing_and_repeats_nothing(
    mailbox: Mailbox,
) -> None:
    """Dovecot's own recovery path: its dovecot-uidlist file is lost, the UIDs are renumbered."""
    mailbox.append(*[make_mail(n) for n in range(3)])
    conn = mailbox.connector()
    try:
        r1 = conn.fetch(None)
        assert len(r1.items) == 3
        before = mailbox.uidvalidity()
        conn.close()  # the restore happens while nobody is connected
        mailbox.admin.logout()
        maildir = mailbox.server.maildir(mailbox.user) / f".{mailbox.folder}"
        (maildir / "dovecot-uidlist").unlink()
        for index in maildir.glob("dovecot.index*"):
            index.unlink()
        mailbox.admin = mailbox._login()
        mailbox.append(make_mail(30))
        assert mailbox.uidvalidity() != before
        r2 = conn.fetch(r1.cursor)
        assert [i.text.splitlines()[0] for i in r2.items] == ["Session reminder 30"]
    finally:
        conn.close()


# -- dropped connections -------------------------------------------------------------------------


def test_a_connection_dropped_mid_fetch_is_resumed_without_loss_or_repeats(
    mailbox: Mailbox,
) -> None:
    mails = [make_mail(n, body=f"Reminder {n}: " + "bring your portfolio. " * 40)
             for n in range(12)]
    mailbox.append(*mails)
    proxy = CuttingProxy((mailbox.server.host, mailbox.server.port), cut_after=9000)
    conn = mailbox.connector(port=proxy.port, batch_size=3)
    try:
        result = conn.fetch(None)
    finally:
        conn.close()
        proxy.close()
    assert proxy.cuts_done == 1, "the proxy must really have cut the first connection"
    assert proxy.connections >= 2
    assert len(mailbox.waits.waits) == 1 and mailbox.waits.waits[0] > 0  # a pause, then again
    assert len(result.items) == 12
    assert len(set(ids(result.items))) == 12


def test_a_server_that_stays_away_keeps_what_was_read_and_the_next_poll_reads_the_rest(
    mailbox: Mailbox,
) -> None:
    mailbox.append(*[make_mail(n, body="Please read the attached notes. " * 60)
                     for n in range(9)])
    # every connection is cut after the same point: the retries cannot get further this poll
    proxy = CuttingProxy((mailbox.server.host, mailbox.server.port), cut_after=12000, cuts=3)
    conn = mailbox.connector(port=proxy.port, batch_size=2, max_retries=2)
    try:
        first = conn.fetch(None)
        assert 0 < len(first.items) < 9
        assert any("went away" in p for p in first.problems)
        second = conn.fetch(first.cursor)
    finally:
        conn.close()
        proxy.close()
    everything = ids(first.items) + ids(second.items)
    assert len(everything) == 9
    assert len(set(everything)) == 9


def test_a_server_that_cannot_be_reached_at_all_is_a_retriable_error(mailbox: Mailbox) -> None:
    mailbox.append(make_mail(1))
    proxy = CuttingProxy((mailbox.server.host, mailbox.server.port), cut_after=10, cuts=10)
    conn = mailbox.connector(port=proxy.port, max_retries=1)
    try:
        with pytest.raises(RetriableError):
            conn.fetch(None)
    finally:
        conn.close()
        proxy.close()


def test_a_wrong_password_is_fatal_and_names_the_fix(mailbox: Mailbox) -> None:
    conn = mailbox.connector(password="wrong")
    with pytest.raises(FatalError, match="refused the login"):
        conn.fetch(None)


# -- malformed mail -------------------------------------------------------------------------


def test_malformed_mime_is_skipped_and_reported_without_its_content(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox.append(make_mail(1), BROKEN_MIME, make_mail(2))
    conn = mailbox.connector()
    caplog.set_level(logging.INFO)
    try:
        r1 = conn.fetch(None)
        r2 = conn.fetch(r1.cursor)
    finally:
        conn.close()
    assert len(r1.items) == 2
    assert len(r1.problems) == 1
    assert "uid 2" in r1.problems[0] and "broken MIME structure" in r1.problems[0]
    assert "SECRET-LEARNER-TEXT" not in caplog.text
    assert any("broken MIME" in r.getMessage() for r in caplog.records)
    assert r2.items == [] and r2.problems == []  # skipped once, not re-reported every poll


# -- parsing ------------------------------------------------------------------------------------


def test_plain_html_and_attachments_are_read_from_a_real_server(mailbox: Mailbox) -> None:
    raw = make_mail(
        5, cc=SECOND_STAFF, subject="Coursework feedback",
        body="Well done on the draft.",
        html="<p>Well done on the <b>draft</b>.</p><script>track()</script>",
        attachment=PDF, references=["root@brookfield.example.org", "mid@brookfield.example.org"],
        when=datetime.fromisoformat("2025-06-10T22:30:00+01:00"),
    )
    mailbox.append(raw)
    conn = mailbox.connector()
    try:
        (item,) = conn.fetch(None).items
    finally:
        conn.close()
    assert item.kind == ItemKind.email
    assert item.author.email == TUTOR and item.author.name == "Daniel Mensah"
    assert [(p.email, p.model_extra["header"]) for p in item.recipients] == [
        (LEARNER, "to"), (SECOND_STAFF, "cc")]
    assert item.text == "Coursework feedback\n\nWell done on the draft."
    assert item.thread_id == "root@brookfield.example.org"
    assert item.parent_id == "mid@brookfield.example.org"
    assert item.created_at == datetime(2025, 6, 10, 21, 30, tzinfo=UTC)
    (media,) = item.media
    assert media.mime_type == "application/pdf"
    assert media.sha256 == hashlib.sha256(PDF).hexdigest()
    assert media.model_extra["size"] == len(PDF)


def test_html_only_mail_is_turned_into_text() -> None:
    msg = EmailMessage()
    msg["From"] = TUTOR
    msg["To"] = LEARNER
    msg["Date"] = "Tue, 04 Mar 2025 18:05:00 +0000"
    msg.set_content("<html><head><style>p{}</style></head><body><p>See you at</p>"
                    "<p>the <i>open evening</i></p></body></html>", subtype="html")
    item = parse_message(msg.as_bytes(), platform="email", account="brookfield-email")
    assert item.text == "See you at\n\nthe open evening"  # paragraphs as the reader sees them
    assert item.id.startswith("sha256:")  # no Message-ID: a stable id from the content
    assert item.thread_id == item.id


def test_people_are_resolved_against_the_registers_including_a_personal_address() -> None:
    registers = RegisterIndex(read_toml(REPO / "examples" / "registers.toml"))
    raw = make_mail(1, sender=TUTOR_PERSONAL, to=LEARNER)
    item = registers.resolve(parse_message(raw, platform="email", account="brookfield-email"))
    assert item.author.role == Role.staff and item.author.register_id == "S006"
    assert item.author.model_extra.get("personal_account") is True
    assert item.recipients[0].role == Role.learner and item.recipients[0].register_id == "L001"


@pytest.mark.parametrize("raw, reason", [
    (BROKEN_MIME, "broken MIME structure"),
    (b"\x00\x01 not a message", "no headers"),
    (b"To: someone@example.org\r\nSubject: no sender\r\n\r\nhello\r\n", "no readable From"),
])
def test_unreadable_messages_are_skippable_records_naming_the_problem(raw: bytes,
                                                                       reason: str) -> None:
    with pytest.raises(SkippableRecord, match=reason):
        parse_message(raw, platform="email", account="a", folder="INBOX", uid=7)


def test_a_date_without_a_readable_value_falls_back_to_the_server_date() -> None:
    raw = (b"From: d.mensah@brookfield.example.org\r\nTo: jayden.price@students.brookfield."
           b"example.org\r\nDate: sometime soon\r\n\r\nhello\r\n")
    server_date = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
    item = parse_message(raw, platform="email", account="a", internal_date=server_date)
    assert item.created_at == server_date


# -- settings ---------------------------------------------------------------------------------


def test_the_password_is_masked_in_repr_and_settings() -> None:
    settings = ImapSettings(name="m", type="imap", account="a", host="127.0.0.1",
                            security="none", username="journal", password="hunter2-secret")
    conn = ImapConnector(settings)
    assert "hunter2-secret" not in repr(conn)
    assert "hunter2-secret" not in str(settings.masked())


def test_plaintext_login_to_a_remote_server_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="allowed only for a server on this machine"):
        ImapSettings(name="m", type="imap", account="a", host="mail.example.org",
                     security="none", username="u", password="p")


def test_the_same_mail_in_two_folders_is_one_item(dovecot_server: DovecotServer) -> None:
    first, second = Mailbox(dovecot_server), Mailbox(dovecot_server)
    raw = make_mail(1)
    first.append(raw)
    second.append(raw, make_mail(2))
    conn = first.connector(folders=[first.folder, second.folder])
    try:
        result = conn.fetch(None)
    finally:
        conn.close()
        first.close()
        second.close()
    assert len(result.items) == 2
    assert len({i.id for i in result.items}) == 2


def test_a_connection_the_server_closed_between_polls_is_reopened(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Servers drop idle sessions (and admins kick them): the next poll reconnects."""
    caplog.set_level(logging.WARNING, logger="connectors.imap")
    mailbox.append(make_mail(1))
    conn = mailbox.connector()
    try:
        first = conn.fetch(None)
        mailbox.server.kick(mailbox.user)  # doveadm kick: every session of the user is closed
        mailbox.admin = mailbox._login()
        mailbox.append(make_mail(2))
        second = conn.fetch(first.cursor)
    finally:
        conn.close()
    assert [i.text.splitlines()[0] for i in second.items] == ["Session reminder 2"]
    assert any("reconnecting" in r.getMessage() for r in caplog.records), \
        "the kick must really have closed the connector's session"


def journal_report(original: bytes, envelope: str) -> bytes:
    """An Exchange journal report as a journaling mailbox receives it: envelope text plus the
    original message attached (message/rfc822)."""
    from email import message_from_bytes
    from email import policy as email_policy

    report = EmailMessage()
    report["From"] = "Microsoft Outlook <MicrosoftExchange329e71ec@brookfield.example.org>"
    report["To"] = "journal@brookfield.example.org"
    report["Subject"] = "Session reminder 1"
    report["Date"] = "Tue, 10 Mar 2026 09:01:00 +0000"
    report["Message-ID"] = "<journal-0001@brookfield.example.org>"
    report["X-MS-Journal-Report"] = ""
    report.set_content(envelope)
    report.add_attachment(message_from_bytes(original, policy=email_policy.default))
    return report.as_bytes()


def test_a_journal_report_is_read_as_the_original_message_with_bcc_recipients(
    mailbox: Mailbox,
) -> None:
    original = make_mail(1, message_id="<orig-1@brookfield.example.org>")
    envelope = ("Sender: d.mensah@brookfield.example.org\n"
                "Subject: Session reminder 1\n"
                "Message-Id: <orig-1@brookfield.example.org>\n"
                f"Recipient: {LEARNER}\n"
                "Recipient: ethan.nwosu@students.brookfield.example.org\n")
    mailbox.append(journal_report(original, envelope))
    conn = mailbox.connector()
    try:
        (item,) = conn.fetch(None).items
    finally:
        conn.close()
    assert item.id == "orig-1@brookfield.example.org"
    assert item.author.email == TUTOR
    assert [(p.email, p.model_extra["header"]) for p in item.recipients] == [
        (LEARNER, "to"), ("ethan.nwosu@students.brookfield.example.org", "envelope")]
    assert item.model_extra["journal_report"] is True


def test_a_journal_report_without_the_original_is_skipped() -> None:
    msg = EmailMessage()
    msg["From"] = "journal@brookfield.example.org"
    msg["X-MS-Journal-Report"] = ""
    msg.set_content("Sender: someone@brookfield.example.org\n")
    with pytest.raises(SkippableRecord, match="without the original message"):
        parse_message(msg.as_bytes(), platform="email", account="a")


def test_a_text_attachment_too_large_to_read_is_reported_not_dropped():
    """Nothing a reader can see escapes the detectors silently: an email's text attachment over
    the size read into the text is named on the item (and in the fetch's problems)."""
    from email.message import EmailMessage

    from connectors.imap import TEXT_ATTACHMENT_BYTES

    msg = EmailMessage()
    msg["From"], msg["To"] = "d.mensah@school.example.org", "learner@school.example.org"
    msg["Subject"], msg["Date"] = "Notes", "Tue, 17 Nov 2026 18:05:00 +0000"
    msg.set_content("See attached")
    msg.add_attachment("a" * (TEXT_ATTACHMENT_BYTES + 10), subtype="plain", filename="big.txt")
    msg.add_attachment("Maisie Okafor 07700 900456", subtype="plain", filename="small.txt")
    item = parse_message(msg.as_bytes(), platform="email", account="brookfield-email")
    assert "Maisie Okafor 07700 900456" in item.text
    assert [(p.source, p.ref) for p in item.parts] == [("attachment", "small.txt")]
    (unread,) = item.unread_attachments  # type: ignore[attr-defined]
    assert unread["filename"] == "big.txt" and "not read" in unread["reason"]
