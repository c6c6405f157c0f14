"""Contract case for the IMAP connector, against the real Dovecot of tests/imap_server.py.

The mail is this project's own (invented staff and learners of the example organisation), put in
a fresh folder of the ``contract`` user over IMAP APPEND as a mail server would deliver it. How
each contract check reads for IMAP:

* refused credentials: Dovecot answers the LOGIN with ``[AUTHENTICATIONFAILED]``;
* rate limited: Dovecot's per-user connection limit (``mail_max_userip_connections``) refuses the
  LOGIN with ``[LIMIT]`` (RFC 5530). IMAP names no time to wait, so the connector must back off and
  try again rather than stop the account;
* server errors: the connection is dropped in the middle of a fetch (before the server answers
  the body FETCH), twice; the connector must reconnect with growing pauses and lose nothing;
* paging: more messages than ``batch_size``, read in several FETCH batches (counted on the wire);
* malformed: a multipart message whose boundary never appears, between two good ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from tests.contract.harness import ImapCase, MailSet
from tests.imap_server import PASSWORD

TUTOR = "Priya Natarajan <p.natarajan@brookfield.example.org>"
LEARNER = "oliver.bennett@students.brookfield.example.org"


def _mail(n: int, tag: str) -> tuple[bytes, str]:
    message_id = f"contract-{tag}-{n}@brookfield.example.org"
    msg = EmailMessage()
    msg["From"] = TUTOR
    msg["To"] = LEARNER
    msg["Subject"] = f"Placement visit {n}"
    msg["Date"] = format_datetime(datetime(2026, 2, 3, 10, n % 60, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(f"Hello Oliver, your placement review {n} is on Thursday at 14:00. "
                    + "Please bring your logbook. " * 20)
    return msg.as_bytes(), message_id


def _set(count: int, tag: str, batch_size: int | None = None) -> MailSet:
    mails = [_mail(n, tag) for n in range(count)]
    return MailSet(messages=[raw for raw, _ in mails], ids={mid for _, mid in mails},
                   batch_size=batch_size)


BROKEN = (
    b"From: Priya Natarajan <p.natarajan@brookfield.example.org>\r\n"
    b"To: oliver.bennett@students.brookfield.example.org\r\n"
    b"Subject: timetable\r\nMessage-ID: <contract-broken@brookfield.example.org>\r\n"
    b"Date: Tue, 03 Feb 2026 10:30:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"not-there\"\r\n\r\n"
    b"The parts of this message were lost in transit.\r\n"
)


def page() -> MailSet:
    return _set(3, "page")


def pages() -> MailSet:
    return _set(8, "pages", batch_size=3)


def malformed() -> MailSet:
    (one, first), (two, second) = _mail(1, "good"), _mail(2, "good")
    return MailSet(messages=[one, BROKEN, two], ids={first, second}, broken=1)


def _settings(where: str) -> dict[str, object]:
    host, _, port = where.rpartition(":")
    return {"type": "imap", "host": host, "port": int(port), "security": "none",
            "username": "contract", "password": "${CONTRACT_IMAP_PASSWORD}",
            "timeout_seconds": 5}


CASES = [
    ImapCase(
        id="imap",
        type="imap",
        settings=_settings,
        env={"CONTRACT_IMAP_PASSWORD": PASSWORD},
        secrets=(PASSWORD,),
        required=("host", "username", "password"),
        invalid={"port": 70000, "batch_size": 0, "security": "plaintext"},
        account="brookfield-email",
        secret_key="password",
        user="contract",
        password_env="CONTRACT_IMAP_PASSWORD",
        page=page,
        pages=pages,
        malformed=malformed,
    ),
]
