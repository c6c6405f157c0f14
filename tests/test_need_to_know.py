"""Need to know, over the whole table: every category x severity x author role (a learner, the
public, a member of staff, the DSL, an account manager, the headteacher), delivered through the
console sink, the JSON sink and Slack (the real slack_sdk against the fake Slack) with the daily
digest. Each finding must reach exactly the people docs/routing.md names, and no message to an
account manager or in a digest may hold a safeguarding finding or a concern about its reader.

The expected audience is written out here from the table (not computed by governance_bot), so
a routing change that breaks the table fails this test.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from governance_bot.config import Config
from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item
from governance_bot.outbox import OutboxSender
from governance_bot.runtime import Runtime
from governance_bot.sinks.console import ConsoleSink, JsonSink
from rules.base import DetectionContext
from rules.engine import DETECTORS, DetectionEngine
from tests.slack.fake_slack import FakeSlack

ACCOUNT = "acc-fb"
# invented people: Dana the DSL, Pat her deputy, Morgan One and Morgan Two who manage the
# account, Harper the headteacher, Casey the chair of governors, Taylor a tutor, Lee a learner
REGISTERS = """
[[staff]]
staff_id = "D"
name = "Dana Lead"
email = "dana@school.example.org"
slack_user_id = "UD"
role = "dsl"

[[staff]]
staff_id = "P"
name = "Pat Deputy"
email = "pat@school.example.org"
slack_user_id = "UP"
role = "deputy_dsl"

[[staff]]
staff_id = "M1"
name = "Morgan One"
email = "m1@school.example.org"
slack_user_id = "UM1"
role = "account_manager"

[[staff]]
staff_id = "M2"
name = "Morgan Two"
email = "m2@school.example.org"
slack_user_id = "UM2"
role = "account_manager"

[[staff]]
staff_id = "H"
name = "Harper Head"
email = "harper@school.example.org"
slack_user_id = "UH"
role = "headteacher"

[[staff]]
staff_id = "C"
name = "Casey Chair"
email = "casey@governors.example.org"
slack_user_id = "UC"
role = "chair_of_governors"

[[staff]]
staff_id = "T"
name = "Taylor Tutor"
email = "taylor@school.example.org"
slack_user_id = "UT"
role = "tutor"

[[learners]]
learner_id = "L1"
first_name = "Lee"
last_name = "Learner"
email = "lee@students.school.example.org"
year_group = "Year 8"
tutor = "T"

[[accounts]]
account_id = "acc-fb"
platform = "facebook"
handle = "@school"
managers = ["M1", "M2"]
"""

AUTHORS = {  # author role -> (item author, staff id if staff)
    "learner": ({"email": "lee@students.school.example.org"}, None),
    "public": ({"id": "fb-stranger", "name": "Someone"}, None),
    "staff": ({"email": "taylor@school.example.org"}, "T"),
    "the DSL": ({"email": "dana@school.example.org"}, "D"),
    "a manager": ({"email": "m1@school.example.org"}, "M1"),
    "the headteacher": ({"email": "harper@school.example.org"}, "H"),
}
CONDUCT = {Category.out_of_hours, Category.personal_account_contact, Category.accountability,
           Category.conversation_drift, Category.video_session}
CONDUCT_IF_STAFF_WROTE_IT = {Category.tone, Category.toxicity, Category.deletion,
                             Category.safeguarding}
DSL_TEAM, MANAGERS, CASE_MANAGER, ALTERNATE = {"D", "P"}, {"M1", "M2"}, {"D"}, {"C"}
SLACK_IDS = {"UD": "D", "UP": "P", "UM1": "M1", "UM2": "M2", "UH": "H", "UC": "C", "UT": "T"}


@dataclass(frozen=True)
class Case:
    n: int
    category: Category
    severity: int
    author: str

    @property
    def marker(self) -> str:
        return f"F{self.n:04d}"

    @property
    def staff_author(self) -> str | None:
        return AUTHORS[self.author][1]


def expected(case: Case) -> tuple[set[str], str]:
    """(who receives the finding, "now" or "digest"), from docs/routing.md."""
    if case.severity == 1:
        return set(), "record"
    subject = case.staff_author
    staff_conduct = case.category in CONDUCT or (
        case.category in CONDUCT_IF_STAFF_WROTE_IT and subject is not None)
    when = "digest" if case.severity == 2 else "now"
    if staff_conduct and case.category == Category.safeguarding:
        when = "now"  # never left for a summary
    if staff_conduct:
        # the case manager is the DSL (the default); a concern about her goes to the chair
        people = ALTERNATE if subject == "D" else CASE_MANAGER
        return people - {subject}, when
    if case.category == Category.safeguarding:
        return DSL_TEAM, "now"
    if case.severity >= 4:
        return DSL_TEAM - {subject}, "now"
    return MANAGERS - {subject}, when


CASES = [Case(n, cat, sev, author) for n, (cat, sev, author) in enumerate(
    (c, s, a) for c in Category for s in range(1, 6) for a in AUTHORS)]


class TableDetector:
    """One finding per item, as the item's text says: "case <n>"."""

    rule_id = "table"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        case = CASES[int(item.text.split()[1])]
        subject = (f"staff:{case.staff_author}>learner:L1"
                   if case.staff_author and case.category in CONDUCT else None)
        yield Finding(f"table_{case.category.value}", case.category,
                      Severity(case.severity), 1.0, f"finding {case.marker}",
                      Evidence(register_entry="learner:L1"), subject=subject)


def _item(case: Case) -> Item:
    author, _ = AUTHORS[case.author]
    return Item.model_validate({
        "id": f"i{case.n}", "platform": "facebook", "account": ACCOUNT, "kind": "comment",
        "author": author, "thread_id": f"t{case.n}",
        "created_at": (datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
                       + timedelta(minutes=case.n)).isoformat(),
        "text": f"case {case.n}"})


@pytest.fixture
def runtime(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Runtime]:
    (tmp_path / "registers.toml").write_text(REGISTERS, encoding="utf-8")
    config = Config(database={"url": f"sqlite:///{tmp_path / 'gb.db'}"},
                    registers={"file": tmp_path / "registers.toml"},
                    detection={"disabled_rules": list(DETECTORS)},
                    slack={"enabled": True, "api_url": fake_slack.base_url,
                           "bot_token": "xoxb-table"})
    rt = Runtime.from_config(config, with_connectors=False)
    rt.pipeline.engine = DetectionEngine([TableDetector()])  # type: ignore[list-item]
    rt.pipeline.process_many([_item(c) for c in CASES])
    yield rt
    rt.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _check(seen: dict[str, set[str]], digest_readers: dict[str, set[str]]) -> None:
    """Every finding reached exactly its audience; nothing in a manager's message or a
    digest is safeguarding or about its reader."""
    wrong = []
    for case in CASES:
        people, _ = expected(case)
        got = seen.get(case.marker, set())
        if got != people:
            wrong.append(f"{case.marker} {case.category.value} severity {case.severity} by "
                         f"{case.author}: expected {sorted(people)}, got {sorted(got)}")
        if case.staff_author in got:
            wrong.append(f"{case.marker}: its subject {case.staff_author} received it")
        for reader in got & MANAGERS | digest_readers.get(case.marker, set()):
            if case.category == Category.safeguarding and reader in MANAGERS:
                wrong.append(f"{case.marker}: safeguarding reached manager {reader}")
    assert wrong == [], "\n".join(wrong[:40])
    for marker, readers in digest_readers.items():
        case = CASES[int(marker[1:])]
        assert case.category != Category.safeguarding and readers <= MANAGERS | CASE_MANAGER \
            | ALTERNATE, marker


def test_the_json_sink_gives_each_finding_to_exactly_its_audience(runtime: Runtime) -> None:
    stream = io.StringIO()
    sink = JsonSink(stream=stream, registers=runtime.registers)
    OutboxSender(runtime.db, sink, runtime.registers,
                 need_to_know=runtime.need_to_know()).drain()
    seen: dict[str, set[str]] = {}
    digest: dict[str, set[str]] = {}
    for line in stream.getvalue().splitlines():
        obj = json.loads(line)
        for f in obj["findings"]:
            marker = f["explanation"].split()[-1]
            seen.setdefault(marker, set()).update(obj["recipients"])
            if obj["route"] in ("digest", "case_digest"):
                digest.setdefault(marker, set()).update(obj["recipients"])
            # one group's line holds only the findings routed to it
            assert len(obj["findings"]) == 1
    _check(seen, digest)


def test_the_console_sink_gives_each_finding_to_exactly_its_audience(runtime: Runtime) -> None:
    out = io.StringIO()
    sink = ConsoleSink(Console(file=out, width=400, highlight=False, color_system=None),
                       registers=runtime.registers)
    OutboxSender(runtime.db, sink, runtime.registers,
                 need_to_know=runtime.need_to_know()).drain()
    names = {s.name: s.staff_id for s in runtime.registers.staff.values()}
    seen: dict[str, set[str]] = {}
    digest: dict[str, set[str]] = {}
    people: set[str] = set()
    route = ""
    for line in out.getvalue().splitlines():
        head = re.match(r"flag.* → (.+) \((.*)\)$", line)
        if head:
            route, people = head.group(1), {names[n] for n in head.group(2).split(", ")}
            continue
        found = re.search(r"finding (F\d{4})", line)
        if found:
            seen.setdefault(found.group(1), set()).update(people)
            if "digest" in route or "summary" in route:
                digest.setdefault(found.group(1), set()).update(people)
    _check(seen, digest)


def test_slack_and_the_digests_give_each_finding_to_exactly_its_audience(
        runtime: Runtime, fake_slack: FakeSlack) -> None:
    from governance_bot.slack.jobs import DigestJob
    from governance_bot.slack.sink import SlackSink

    sink = SlackSink.from_config(runtime.config, runtime.db, registers=runtime.registers)
    runtime.sender(sink).drain()
    assert runtime.sender(sink).pending() == 0
    digests = DigestJob(sink.bot)
    digests.run()
    digests.run_weekly()  # conversations without a second adult wait for the weekly summary
    members = {cid: {SLACK_IDS[u] for u in users}
               for users, cid in fake_slack._conversations.items()}
    seen: dict[str, set[str]] = {}
    digest: dict[str, set[str]] = {}
    for call in fake_slack.calls("chat.postMessage") + fake_slack.calls("chat.update"):
        shown = json.dumps(call.params.get("blocks"), ensure_ascii=False) + str(
            call.params.get("text"))
        readers = members[call.params["channel"]]
        is_digest = ("Daily digest" in shown or "daily summary" in shown
                     or "weekly summary" in shown)
        for marker in set(re.findall(r"F\d{4}", shown)):
            seen.setdefault(marker, set()).update(readers)
            if is_digest:
                digest.setdefault(marker, set()).update(readers)
    _check(seen, digest)
    # and the digests hold only low-severity findings
    for marker in digest:
        assert CASES[int(marker[1:])].severity == 2, marker


def test_the_table_covers_every_category_severity_and_author() -> None:
    assert len(CASES) == len(Category) * 5 * len(AUTHORS)
    kinds = {expected(c)[1] for c in CASES}
    assert kinds == {"record", "now", "digest"}
    assert any(expected(c)[0] == ALTERNATE for c in CASES)  # a concern about the DSL
    assert any(expected(c)[0] == {"M2"} for c in CASES)  # a manager's own post

