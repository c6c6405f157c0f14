"""``imap``: email from staff mailboxes or a journaling mailbox, read over IMAP.

Policy duty: staff-learner communication is checked on every channel (P1 "What we expect of our
staff", P2 "Communicating with students"): hours, personal accounts, tone and accountability.

How it reads:

- Each folder is read incrementally by UID. The cursor keeps, per folder, the UIDVALIDITY, the last
  UID read, the latest INTERNALDATE seen and short hashes of the most recent Message-IDs.
- Folders are opened read-only and bodies fetched with ``BODY.PEEK[]``, so staff mail is never
  marked as read.
- When the server changes a folder's UIDVALIDITY (the mailbox was rebuilt or restored) the old
  UIDs mean nothing: the folder is listed again from a few days before the latest mail seen, and
  messages whose Message-ID was already read are skipped. The item id is the Message-ID, so the
  archive would merge a repeat anyway.
- A dropped connection is reconnected (after a growing pause) and the fetch carries on from the
  last complete batch, so nothing is lost or read twice; if the server stays away, what was read
  so far is returned with a cursor that points just after it.
- A login the server refuses for a passing reason (RFC 5530 response codes ``[LIMIT]``, e.g.
  Dovecot's per-user connection limit, ``[UNAVAILABLE]``, ``[INUSE]``, ``[SERVERBUG]``) is retried
  the same way: it is the IMAP form of "busy, try later", not a wrong password. Any other refused
  login stops the account with the fix.
- A message whose MIME structure is broken is skipped and reported (folder and UID, never its
  content); everything else goes on.
- Exchange / Microsoft 365 journal reports (``X-MS-Journal-Report``) are unwrapped: the item is
  the original message attached to the report, and the report's envelope recipients (Bcc and
  expanded distribution lists) are added to its recipients.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import errors as email_errors
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from typing import Any, ClassVar, Literal

import lxml.html
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from lxml import etree
from lxml.etree import ParserError
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    Capability,
    Connector,
    ConnectorSettings,
    FatalError,
    FetchResult,
    RetriableError,
    SkippableRecord,
    html_to_text,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["FolderState", "ImapConnector", "ImapSettings", "parse_message"]

log = logging.getLogger(__name__)

# Defects that mean the MIME structure cannot be trusted: the body we would check is not the body
# a person sees, so the message is skipped and reported rather than half-read.
_BROKEN_STRUCTURE = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.MultipartInvariantViolationDefect,
)
_CONNECTION_LOST = (IMAPClientAbortError, OSError, socket.timeout)
# RFC 5530 response codes that say "not now" rather than "not you": the login is retried later
_TRANSIENT_LOGIN = ("[LIMIT]", "[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]")


class _ServerBusy(Exception):
    """The server refused the login for a passing reason (an RFC 5530 code in ``code``)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class ImapSettings(ConnectorSettings):
    host: str = Field(min_length=1, description="the IMAP server, e.g. outlook.office365.com")
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = Field(
        default="ssl", description="'none' is accepted only for a server on this machine"
    )
    username: str = Field(min_length=1)
    password: SecretStr = Field(description='"${ENV_VAR}" holding the password or app password')
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    platform: str = Field(default="email", description="the items' platform name")
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    backfill_days: int = Field(default=30, ge=0, description="how far back the first poll reads")
    rescan_days: int = Field(
        default=3, ge=0, description="after a UIDVALIDITY change, re-list this far before the "
        "latest mail already read"
    )
    seen_window: int = Field(default=5000, ge=100, description="Message-IDs remembered per folder")

    @model_validator(mode="after")
    def _plaintext_only_locally(self) -> ImapSettings:
        if self.security == "none":
            try:
                local = ipaddress.ip_address(self.host).is_loopback
            except ValueError:
                local = self.host == "localhost"
            if not local:
                raise ValueError(
                    f"security = 'none' sends the password in clear; it is allowed only for a "
                    f"server on this machine, not {self.host!r}. Use 'ssl' or 'starttls'."
                )
        return self


def _id_hash(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass(slots=True)
class FolderState:
    """Where reading one folder got to (stored in the cursor as plain JSON)."""

    uidvalidity: int | None = None
    last_uid: int = 0
    last_date: str | None = None  # latest INTERNALDATE read, ISO 8601 UTC
    since: str | None = None  # a date floor for the pass in progress (backfill or re-list)
    seen: list[str] = field(default_factory=list)  # Message-ID hashes, oldest first

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FolderState:
        data = data or {}
        return cls(
            uidvalidity=data.get("uidvalidity"),
            last_uid=int(data.get("last_uid", 0)),
            last_date=data.get("last_date"),
            since=data.get("since"),
            seen=list(data.get("seen", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "last_date": self.last_date,
            "since": self.since,
            "seen": list(self.seen),
        }


def _addresses(msg: EmailMessage, header: str) -> list[Address]:
    value = msg.get(header)
    if value is None:
        return []
    found: list[Address] = []
    for address in getattr(value, "addresses", ()):
        if address.username and address.domain:
            found.append(address)
    return found


def _person(address: Address, header: str | None = None) -> Person:
    email_address = address.addr_spec.lower()
    person = Person(id=email_address, email=email_address, name=address.display_name or None)
    if header:
        person = person.model_copy(update={"header": header})
    return person


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids: list[str] = []
    for token in str(value).replace(",", " ").split():
        token = token.strip()
        if token.startswith("<") and token.endswith(">") and len(token) > 2:
            ids.append(token[1:-1])
    return ids


# text attachments up to this size are read into the item's text; larger ones are noted
TEXT_ATTACHMENT_BYTES = 256 * 1024
_TEXT_TYPES = ("text/plain", "text/html", "text/csv", "text/markdown", "text/calendar",
               "text/vcard", "text/x-vcard")


def _part_text(part: MIMEPart) -> str:
    """A text part's content as the reader sees it (HTML turned into text)."""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, undecodable payload
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content.strip()


_CHARSET = re.compile(r'charset="?([\w.:-]+)', re.IGNORECASE)


def _raw_header(part: MIMEPart, name: str) -> str:
    """A header's raw text, not parsed (the email package parses a header again on every read:
    most of the time of reading a message)."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _html_alternative(msg: EmailMessage) -> MIMEPart | None:
    """The first inline text/html part of a multipart message (the HTML alternative)."""
    for part in msg.walk():
        kind = _raw_header(part, "content-type").split(";", 1)[0].strip().lower()
        if kind == "text/html" and not _raw_header(
                part, "content-disposition").strip().lower().startswith("attachment"):
            return part
    return None


def _html_beyond(part: MIMEPart, plain: str) -> str:
    """The HTML alternative's text when it says something the plain text does not ("" when the
    two say the same, as most mail does: checked first on lxml's own text, which is cheap)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload.strip():
        return ""
    charset = _CHARSET.search(_raw_header(part, "content-type"))
    try:
        html = payload.decode(charset.group(1) if charset else "utf-8", "replace")
    except LookupError:
        html = payload.decode("utf-8", "replace")
    same = "".join(plain.split())
    try:
        root = lxml.html.document_fromstring(html)
        etree.strip_elements(root, "script", "style", "head", "title", with_tail=False)
        if "".join(root.text_content().split()) == same:
            return ""
    except (ParserError, ValueError):
        pass
    shown = html_to_text(html)
    return "" if "".join(shown.split()) == same else shown


def _visible(msg: EmailMessage) -> tuple[str, list[tuple[str, str | None, str | None]],
                                         list[Media]]:
    """The body a reader sees first (plain, else HTML), what else they may see (the HTML
    alternative when it says more than the plain text, as most mail programs show the HTML;
    text attachments up to ``TEXT_ATTACHMENT_BYTES``) and the attachments as media. Each part's
    type is read once: the email package parses a header again on every read."""
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = _part_text(body_part) if body_part is not None else ""
    extras: list[tuple[str, str | None, str | None]] = []
    if body_part is not None and msg.is_multipart() and _raw_header(
            body_part, "content-type").split(";", 1)[0].strip().lower() in ("text/plain", ""):
        html = _html_alternative(msg)
        if html is not None:
            shown = _html_beyond(html, body)
            if shown:
                extras.append(("email html", shown, None))
    media: list[Media] = []
    for part in msg.iter_attachments():
        kind = part.get_content_type()
        if kind.startswith("message/"):
            data = part.as_bytes()
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        name = part.get_filename()
        if kind in _TEXT_TYPES and len(data) <= TEXT_ATTACHMENT_BYTES:
            extras.append(("attachment", _part_text(part), name or kind))
        media.append(Media.model_validate({
            "mime_type": kind, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "filename": name}))
    return body, extras, media


def parse_message(
    raw: bytes,
    *,
    platform: str,
    account: str,
    folder: str | None = None,
    uid: int | None = None,
    internal_date: datetime | None = None,
) -> Item:
    """One RFC 5322 message to an email ``Item``; ``SkippableRecord`` when it cannot be read."""
    where = f"{folder} uid {uid}" if folder is not None else "message"
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise SkippableRecord(f"{where}: no headers (not an email message)")
    broken = [
        type(d).__name__
        for part in msg.walk()
        for d in part.defects
        if isinstance(d, _BROKEN_STRUCTURE)
    ]
    if broken:
        raise SkippableRecord(f"{where}: broken MIME structure ({', '.join(sorted(set(broken)))})")
    if "X-MS-Journal-Report" in msg:
        return _journalled(msg, platform=platform, account=account, folder=folder, uid=uid,
                           internal_date=internal_date, where=where)
    senders = _addresses(msg, "From") or _addresses(msg, "Sender")
    if not senders:
        raise SkippableRecord(f"{where}: no readable From address")

    message_ids = _message_ids(msg.get("Message-ID"))
    item_id = message_ids[0] if message_ids else "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
    references = _message_ids(msg.get("References"))
    in_reply_to = _message_ids(msg.get("In-Reply-To"))
    parent_id = in_reply_to[0] if in_reply_to else (references[-1] if references else None)
    thread_id = references[0] if references else (parent_id or item_id)

    created_at: datetime | None = None
    date_header = msg.get("Date")
    if date_header is not None:
        created_at = getattr(date_header, "datetime", None)
        if created_at is not None and created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)  # RFC 5322 "-0000": time zone unknown
    if created_at is None:
        created_at = internal_date
    if created_at is None:
        raise SkippableRecord(f"{where}: no readable Date and no server date")

    recipients = [
        _person(a, header.lower())
        for header in ("To", "Cc", "Bcc")
        for a in _addresses(msg, header)
    ]
    subject = str(msg.get("Subject") or "").strip()
    body, extras, media = _visible(msg)
    text = f"{subject}\n\n{body}" if subject and body else (subject or body)
    # a text attachment too large to read is not dropped silently: the item says so
    unread = [{"filename": getattr(m, "filename", None),
               "reason": f"a text attachment over {TEXT_ATTACHMENT_BYTES} bytes: not read"}
              for m in media if m.mime_type in _TEXT_TYPES
              and int(getattr(m, "size", 0) or 0) > TEXT_ATTACHMENT_BYTES]
    return Item.model_validate({
        "id": item_id,
        "platform": platform,
        "account": account,
        "kind": ItemKind.email,
        "author": _person(senders[0]),
        "recipients": recipients,
        "created_at": created_at,
        "visibility": Visibility.direct if len(recipients) == 1 else Visibility.private,
        **visible_text(text, extras),
        "media": media,
        "unread_attachments": unread or None,
        "parent_id": parent_id,
        "thread_id": thread_id,
        "subject": subject or None,
        "folder": folder,
    })


_ENVELOPE_RECIPIENT = re.compile(r"^(?:Recipient|To|Cc|Bcc):\s*([^,\s]+@[^,\s]+)", re.MULTILINE)


def _journalled(report: EmailMessage, *, platform: str, account: str, folder: str | None,
                uid: int | None, internal_date: datetime | None, where: str) -> Item:
    """An Exchange / Microsoft 365 journal report: the item is the original message attached to
    it, with every envelope recipient (Bcc and expanded lists included) among its recipients."""
    original = None
    for part in report.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else None
            break
    if not isinstance(original, EmailMessage):
        raise SkippableRecord(f"{where}: a journal report without the original message attached")
    item = parse_message(original.as_bytes(), platform=platform, account=account, folder=folder,
                         uid=uid, internal_date=internal_date)
    envelope = report.get_body(preferencelist=("plain",))
    lines = envelope.get_content() if envelope is not None else ""
    known = {p.email for p in item.recipients}
    extra = []
    for address in _ENVELOPE_RECIPIENT.findall(lines if isinstance(lines, str) else ""):
        address = address.strip("<>").lower()
        if address not in known and address != item.author.email:
            known.add(address)
            extra.append(Person.model_validate({"id": address, "email": address,
                                                "header": "envelope"}))
    return item.model_copy(update={"recipients": [*item.recipients, *extra],
                                   "journal_report": True})


class ImapConnector(Connector):
    """Email over IMAP: a staff mailbox or a journaling mailbox that receives a copy of all mail."""

    type: ClassVar[str] = "imap"
    description: ClassVar[str] = "email from staff or journaling mailboxes over IMAP"
    Settings = ImapSettings
    capabilities = frozenset({Capability.read, Capability.direct_messages})

    settings: ImapSettings

    def __init__(self, settings: ConnectorSettings, *,
                 sleep: Callable[[float], None] = time.sleep, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self._client: IMAPClient | None = None
        self.sleep = sleep

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        s = self.settings
        client = IMAPClient(s.host, port=s.port, ssl=s.security == "ssl",
                            timeout=s.timeout_seconds)
        try:
            client.normalise_times = False  # keep INTERNALDATE's time zone
            if s.security == "starttls":
                client.starttls()
            client.login(s.username, s.password.get_secret_value())
        except LoginError as exc:
            with contextlib.suppress(Exception):  # the server may already have hung up
                client.shutdown()
            raw = exc.args[0] if exc.args else ""
            # imapclient passes the server's text on as bytes, or as the str() of those bytes
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            text = text[2:] if text.startswith(("b'", 'b"')) else text
            code = next((c for c in _TRANSIENT_LOGIN if text.startswith(c)), None)
            if code is not None:
                raise _ServerBusy(code.strip("[]")) from exc
            raise FatalError(
                f"{self.name} (account {self.account}): the IMAP server refused the login for "
                f"{s.username!r}. Fix: check the username and the password in the environment "
                f"(an app password where the mail service requires one)."
            ) from exc
        return client

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.shutdown()
        except Exception:  # the connection is already gone; nothing to tidy
            log.debug("%s: closing a broken IMAP connection failed", self.name, exc_info=True)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except (IMAPClientError, *_CONNECTION_LOST):
                log.debug("%s: IMAP logout failed", self.name, exc_info=True)

    # -- fetching -----------------------------------------------------------------------------

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        states = dict((cursor or {}).get("folders", {}))
        items: list[Item] = []
        problems: list[str] = []
        for folder in self.settings.folders:
            state = FolderState.from_dict(states.get(folder))
            try:
                self._sync_folder(folder, state, items, problems)
            except RetriableError:
                if not items:
                    raise
                states[folder] = state.to_dict()
                problems.append(f"{self.name}: {folder}: the server went away; read so far kept, "
                                f"the rest follows on the next poll")
                return FetchResult(items=items, cursor={"folders": states}, problems=problems)
            states[folder] = state.to_dict()
        return FetchResult(items=items, cursor={"folders": states}, problems=problems)

    def _sync_folder(
        self, folder: str, state: FolderState, items: list[Item], problems: list[str]
    ) -> None:
        attempt = 0
        while True:
            try:
                if self._client is None:
                    self._client = self._connect()
                self._sync_once(self._client, folder, state, items, problems)
                return
            except _ServerBusy as exc:
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise RetriableError(
                        f"{self.name}: the IMAP server refused the login {attempt} times for a "
                        f"passing reason ({exc.code}) reading {folder}; trying again next poll"
                    ) from exc
                log.warning("%s: the IMAP server is busy (%s) reading %s; trying again (try %d)",
                            self.name, exc.code, folder, attempt)
                self._backoff(attempt)
            except _CONNECTION_LOST as exc:
                self._drop_client()
                attempt += 1
                if attempt > self.settings.max_retries:
                    raise RetriableError(
                        f"{self.name}: lost the IMAP connection {attempt} times reading {folder} "
                        f"({type(exc).__name__})"
                    ) from exc
                log.warning("%s: IMAP connection lost reading %s (%s); reconnecting (try %d)",
                            self.name, folder, type(exc).__name__, attempt)
                self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        """A growing pause before try ``attempt`` + 1, so a restarting server is not hammered."""
        self.sleep(min(60.0, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() * 0.1))

    def _sync_once(
        self,
        client: IMAPClient,
        folder: str,
        state: FolderState,
        items: list[Item],
        problems: list[str],
    ) -> None:
        try:
            info = client.select_folder(folder, readonly=True)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise FatalError(
                f"{self.name} (account {self.account}): cannot open folder {folder!r} "
                f"({exc}). Fix: check `folders` in the connector settings."
            ) from exc
        uidvalidity = int(info[b"UIDVALIDITY"])
        if state.uidvalidity is None:
            state.uidvalidity = uidvalidity
            if self.settings.backfill_days:
                floor = datetime.now(UTC) - timedelta(days=self.settings.backfill_days)
                state.since = floor.date().isoformat()
        elif state.uidvalidity != uidvalidity:
            log.warning(
                "%s: %s changed UIDVALIDITY (%s -> %s); re-listing from before the latest mail "
                "read and skipping Message-IDs already seen",
                self.name, folder, state.uidvalidity, uidvalidity,
            )
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            if state.last_date:
                floor = datetime.fromisoformat(state.last_date) - timedelta(
                    days=self.settings.rescan_days)
                state.since = floor.date().isoformat()
            else:
                state.since = None

        criteria: list[Any] = ["UID", f"{state.last_uid + 1}:*"]
        if state.since:
            criteria += ["SINCE", datetime.fromisoformat(state.since).date()]
        uids = sorted(u for u in client.search(criteria) if u > state.last_uid)
        for start in range(0, len(uids), self.settings.batch_size):
            batch = uids[start : start + self.settings.batch_size]
            self._read_batch(client, folder, batch, state, items, problems)
        state.since = None  # the pass is complete: from now on, every new UID is read

    def _read_batch(
        self,
        client: IMAPClient,
        folder: str,
        batch: list[int],
        state: FolderState,
        items: list[Item],
        problems: list[str],
    ) -> None:
        heads = client.fetch(batch, ["RFC822.SIZE", "INTERNALDATE",
                                     "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        seen = set(state.seen)
        wanted: list[int] = []
        for uid in batch:
            head = heads.get(uid)
            if head is None:  # expunged between SEARCH and FETCH
                continue
            header_bytes = head.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]") or b""
            ids = _message_ids(BytesParser(policy=policy.default)
                               .parsebytes(header_bytes, headersonly=True).get("Message-ID"))
            if ids and _id_hash(ids[0]) in seen:
                continue
            size = int(head.get(b"RFC822.SIZE", 0))
            if size > self.settings.max_message_bytes:
                problems.append(f"{self.name}: {folder} uid {uid}: {size} bytes is over "
                                f"max_message_bytes ({self.settings.max_message_bytes}); skipped")
                log.warning("%s: %s uid %d skipped: %d bytes over the size limit",
                            self.name, folder, uid, size)
                continue
            wanted.append(uid)
        bodies = client.fetch(wanted, ["BODY.PEEK[]", "INTERNALDATE"]) if wanted else {}
        # nothing above changed the state: a connection lost before here re-reads the batch
        new_items: list[Item] = []
        for uid in batch:
            head = heads.get(uid) or {}
            internal = head.get(b"INTERNALDATE")
            if isinstance(internal, datetime):
                internal = internal if internal.tzinfo else internal.replace(tzinfo=UTC)
                iso = internal.astimezone(UTC).isoformat()
                if state.last_date is None or iso > state.last_date:
                    state.last_date = iso
            body = bodies.get(uid)
            if body is None:
                continue
            raw = body.get(b"BODY[]") or b""
            try:
                item = parse_message(
                    raw, platform=self.settings.platform, account=self.account,
                    folder=folder, uid=uid,
                    internal_date=internal if isinstance(internal, datetime) else None,
                )
            except SkippableRecord as exc:
                problems.append(f"{self.name}: {exc}")
                log.warning("%s: skipped: %s", self.name, exc)
                continue
            except Exception as exc:  # a parser bug on one message must not stop the mailbox
                problems.append(f"{self.name}: {folder} uid {uid}: unreadable "
                                f"({type(exc).__name__})")
                log.warning("%s: %s uid %d unreadable (%s)", self.name, folder, uid,
                            type(exc).__name__)
                continue
            key = _id_hash(item.id)
            if key in seen:
                continue
            seen.add(key)
            for unread in getattr(item, "unread_attachments", None) or []:
                # checked without it: said, never silently (the file name is the sender's)
                problems.append(f"{self.name}: {folder} uid {uid}: attachment "
                                f"{unread.get('filename') or '(no name)'}: {unread['reason']}")
            state.seen.append(key)
            new_items.append(item)
        # the same mail filed in two folders (a journal's INBOX and Sent) is one item
        emitted = {i.id for i in items}
        items.extend(i for i in new_items if i.id not in emitted)
        state.last_uid = max(state.last_uid, batch[-1])
        overflow = len(state.seen) - self.settings.seen_window
        if overflow > 0:
            del state.seen[:overflow]
