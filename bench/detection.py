"""Learner details, out-of-hours and tone together: items/s on one core over 100,000 items.

Acceptance (issue 2): at least 5,000 items/s on one core of the 2-core machine and a peak RSS
under 500 MB, for the three detectors together (learner_pii + out_of_hours + tone, 2,000
learners in the register).

    .venv/bin/python bench/run.py detection                   # the table (each row pinned to CPU 0)
    .venv/bin/python bench/run.py detection --items 20000     # a quicker look

Everything is invented here from a seed: a register of 2,000 learners built from the first and
last name lists below (with preferred names, hyphens, apostrophes, handles, emails and dates of
birth) and 100,000 varied items: organisation posts, public comments, staff replies and
staff<->learner direct messages, some with learners' names, handles, hashtags, phone numbers,
postcodes, street addresses, dates of birth, kisses and out-of-hours times.

Each configuration (each detector alone, then all together) runs in its own child process pinned
to CPU 0 (as ``taskset -c 0`` does), so every peak RSS (``ru_maxrss``) is that configuration's
own. Items are generated, resolved against the registers and handed to the engine in chunks of
5,000; only ``DetectionEngine.detect`` calls are timed. Detectors in ``rules.engine.DETECTORS``
whose module does not exist yet are skipped and the table says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # a child process (--child): the repository root on the path
    sys.path.insert(0, str(REPO))

from bench.harness import Bench  # noqa: E402
from governance_bot.config import Config  # noqa: E402
from governance_bot.findings import Finding  # noqa: E402
from governance_bot.items import Item, ItemKind, Media, Person, Visibility  # noqa: E402
from governance_bot.registers import (  # noqa: E402
    Account,
    Learner,
    RegisterIndex,
    Registers,
    StaffMember,
    StaffRole,
)
from rules.base import DetectionContext  # noqa: E402
from rules.engine import DETECTORS, DetectionEngine  # noqa: E402

FIRST_NAMES = [
    "Aaliyah", "Abdul", "Adaeze", "Aiden", "Alfie", "Amelia", "Archie", "Aria", "Arjun", "Ava",
    "Bartosz", "Bethan", "Caleb", "Callum", "Chidi", "Cian", "Daisy", "Declan", "Dylan", "Eilidh",
    "Elijah", "Ella", "Erin", "Evie", "Fatima", "Finley", "Florence", "Freddie", "Gracie",
    "Hannah", "Harper", "Hassan", "Ibrahim", "Imogen", "Isaac", "Isla", "Jacob", "James",
    "Jessica", "Joshua", "Kai", "Keira", "Leo", "Lewis", "Liam", "Lily", "Logan", "Lucas",
    "Maja", "Mason", "Matilda", "Mia", "Mohammed", "Niamh", "Noah", "Nuala", "Olivia", "Oscar",
    "Priya", "Reuben", "Riley", "Rosie", "Samuel", "Scarlett", "Seren", "Sienna", "Sofia",
    "Teddy", "Theo", "Thomas", "Tobias", "Wiktoria", "William", "Yusuf", "Zainab", "Zachary",
]
LAST_NAMES = [
    "Abbott", "Adeyemi", "Ahmed", "Ali", "Armstrong", "Bailey", "Barker", "Begum", "Bennett",
    "Bhatt", "Booth", "Bradley", "Byrne", "Campbell", "Chowdhury", "Clarke", "Coates", "Collins",
    "Cunningham", "Davies", "Dawson", "Douglas", "Dunne", "Ellis", "Evans", "Farrell", "Fitzgerald",
    "Foster", "Gallagher", "Gill", "Gordon", "Griffiths", "Hamilton", "Harris", "Hussain",
    "Iqbal", "Jackson", "Jones", "Kaur", "Kelly", "Kowalski", "Lewandowska", "Lloyd", "MacDonald",
    "McAllister", "Mahmood", "Moran", "Morgan", "Murphy", "Nowak", "O'Brien", "O'Neill",
    "Okonkwo", "Osei", "Parry", "Patel", "Pritchard", "Quinn", "Rahman", "Reilly", "Roberts",
    "Robinson", "Shah", "Sharma", "Singh", "Stewart", "Sullivan", "Taylor", "Thomas", "Thompson",
    "Wallace", "Walsh", "Watkins", "Williams", "Wright", "Yilmaz", "Zaman",
    "Ashby-Cole", "Lloyd-Evans", "Khan-Patel", "D'Souza", "Mac Giolla",
]
STAFF_NAMES = [
    "Helen Okafor", "Marcus Reid", "Priya Natarajan", "Tom Ashworth", "Grace Lindqvist",
    "Daniel Mensah", "Sophie Carrington", "Leon Fairbairn", "Rachel Obi", "Gareth Pugh",
    "Fiona Drummond", "Kwame Boateng", "Agnieszka Wrobel", "Stuart Bellamy", "Nadia Rahim",
    "Owen Griffiths", "Lucy Hartley", "Imran Sadiq", "Bronwen Jenkins", "Callum Ross",
]
PLACES = ["science museum", "county library", "sports hall", "theatre", "farm", "town hall",
          "university open day", "coding club", "art gallery", "climbing wall"]
STREETS = ["Acacia Avenue", "Mill Lane", "Victoria Road", "Church Street", "Park View",
           "Orchard Close", "Station Road", "Elm Grove", "Kings Crescent", "Meadow Way"]
POSTCODES = ["LS11 5BT", "M14 6HQ", "B12 9QX", "CF24 3AA", "EH7 4JL", "BT9 6FG", "NE6 2XA",
             "SW9 8LP", "G41 2BB", "ls6 3aw"]
POST_TEMPLATES = [
    "Our Year {year} students visited the {place} today. What a brilliant trip!",
    "Reminder: parents evening is on {date} from 4pm to 7pm. Book via the app.",
    "Well done to the under-{u} football team who won {score} on Saturday!",
    "The summer fair raised £{money} for the library. Thank you all!",
    "Term starts on {date}. Uniform grace period ends after half term; ask if you need help.",
    "Applications for the {place} apprenticeship close on {date}.",
    "Who will take home the science cup this year? Entries close {date}.",
    "May we remind families that the car park is for staff only between 8 and 9am.",
    "Our sixth form open evening is on {date}. Call 0113 496 0000 to book a place.",
    "Congratulations to everyone who took part in the {place} challenge, {score} overall.",
]
COMMENT_TEMPLATES = [
    "Brilliant, thanks for sharing!", "What time does it finish?", "So proud of them all",
    "Is there parking at the {place}?", "Great photos, well done everyone",
    "Will there be another one next term?", "Can we still pay on {date}?",
    "Amazing effort from the whole team {score}", "Lovely to see, thank you staff",
    "my lad loved it, he was buzzing all evening",
]
DM_TEMPLATES = [
    "Hi, just a reminder your assessment is on {date} at 10am in room {room}.",
    "Please bring your portfolio to the session on {date}.",
    "Thanks for sending that over, I'll mark it this week.",
    "Your placement review has moved to {date}. Any problems let me know.",
    "Well done on the mock results, keep it up.",
    "Don't forget the logbook needs signing by your employer before {date}.",
]
KISS_SIGNOFFS = [" xx", " x", " 😘", " love you hun xx", " cheers babe", " night night x"]


def build_registers(rng: random.Random, learners: int) -> Registers:
    staff = []
    for i, name in enumerate(STAFF_NAMES, start=1):
        first, last = name.split(" ", 1)
        staff.append(StaffMember(
            staff_id=f"S{i:03d}", name=name,
            role=StaffRole.tutor if i > 5 else StaffRole.account_manager,
            email=f"{first[0].lower()}.{last.lower()}@bench.example.org",
            platform_ids=[f"dm:staff{i}"], personal_handles=[f"@{first.lower()}{i}_personal"],
        ))
    people: list[Learner] = []
    for i in range(learners):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        plain = last.lower().replace("'", "").replace(" ", "").replace("-", "")
        born = date(2008, 1, 1) + timedelta(days=rng.randrange(6 * 365))
        people.append(Learner(
            learner_id=f"L{i:05d}", first_name=first, last_name=last,
            preferred_name=rng.choice([None, None, None, None, first[:3]]),
            date_of_birth=born,
            email=f"{first.lower()}.{plain}{i}@students.bench.example.org",
            handles=[f"@{first.lower()}{plain[:4]}{i}", f"{first.lower()}{i}@mail.example.com"],
            photo_consent=rng.random() < 0.7, comms_consent=True,
        ))
    accounts = [
        Account(account_id="bench-facebook", platform="facebook", handle="BenchAcademy",
                platform_id="fb:org", managers=["S001", "S002"]),
        Account(account_id="bench-teams", platform="teams", handle="bench.example.org",
                managers=["S001", "S002"]),
    ]
    return Registers(staff=staff, learners=people, accounts=accounts)


class BenchHistory:
    """An in-memory History: thread context and earlier findings, as the pipeline keeps them."""

    def __init__(self) -> None:
        self.threads: dict[str, list[Item]] = defaultdict(list)
        self.findings: dict[tuple[str, str], list[tuple[datetime, str | None]]] = defaultdict(list)

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        return self.threads.get(item.thread_key, [])[-limit:]

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        return [t for t, key in self.findings.get((rule_id, subject), ())
                if since <= t <= until and key != exclude_item_key]

    def record(self, item: Item, findings: list[Finding]) -> None:
        if item.thread_id or item.parent_id:  # conversations; a lone post has no thread
            threads = self.threads[item.thread_key]
            threads.append(item)
            if len(threads) > 50:
                del threads[:25]
        for f in findings:
            if f.subject:
                self.findings[(f.rule_id, f.subject)].append((item.created_at, item.key))


class ItemFactory:
    """Varied invented items; about one in six mentions a learner or a contact detail."""

    def __init__(self, rng: random.Random, registers: Registers):
        self.rng = rng
        self.learners = registers.learners
        self.staff = registers.staff
        self.start = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
        self.n = 0

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            year=r.randint(7, 13), place=r.choice(PLACES), u=r.choice([11, 12, 13, 14, 16]),
            score=f"{r.randint(0, 6)}-{r.randint(0, 6)}", money=f"{r.randint(100, 3000):,}",
            date=f"{r.randint(1, 28)}/{r.randint(1, 12)}/2026", room=r.randint(1, 40),
        )

    def _pii(self, text: str) -> tuple[str, bool]:
        """Sometimes add a learner detail; returns the text and whether a photo goes with it."""
        r = self.rng
        roll = r.random()
        lr = r.choice(self.learners)
        if roll < 0.03:
            name = r.choice([f"{lr.first_name} {lr.last_name}", f"{lr.last_name}, {lr.first_name}",
                             f"{lr.first_name.upper()} {lr.last_name.upper()}",
                             f"{lr.first_name} {lr.last_name}'s"])
            return f"{text} Special mention to {name}!", False
        if roll < 0.04:
            plain = lr.last_name.replace("'", "").replace(" ", "").replace("-", "")
            return f"{text} #{lr.first_name}{plain}", False
        if roll < 0.05:
            return f"{text} Photo: {lr.handles[0]}", True
        if roll < 0.06:
            return f"{text} Call me on 07{r.randint(700, 999)} {r.randint(100000, 999999)}", False
        if roll < 0.07:
            return f"{text} Lost property found near {r.choice(POSTCODES)}", False
        if roll < 0.075:
            return f"{text} Drop it at {r.randint(1, 200)} {r.choice(STREETS)}", False
        if roll < 0.08:
            return f"{text} Happy birthday {lr.first_name}, born {lr.date_of_birth:%d/%m/%Y}", False
        if roll < 0.13:
            return f"{text} Well done {lr.first_name}!", r.random() < 0.5
        if roll < 0.14:
            return f"{text} Star of the week: {lr.first_name} {lr.last_name[0]}.", True
        return text, r.random() < 0.2

    def _time(self, evening: float) -> datetime:
        r = self.rng
        day = self.start + timedelta(days=r.randrange(120))
        if r.random() < evening:
            return day.replace(hour=r.choice([5, 6, 19, 20, 21, 22, 23]), minute=r.randrange(60))
        return day.replace(hour=r.randint(8, 17), minute=r.randrange(60))

    def item(self) -> Item:
        r = self.rng
        self.n += 1
        roll = r.random()
        media: list[Media] = []
        recipients: list[Person] = []
        thread = None
        if roll < 0.40:
            kind, visibility, account = "post", "public", "bench-facebook"
            author = Person(id="fb:org", name="Bench Academy")
            text, photo = self._pii(self._fill(r.choice(POST_TEMPLATES)))
            created = self._time(0.05)
        elif roll < 0.70:
            kind, visibility, account = "comment", "public", "bench-facebook"
            author = Person(id=f"fb:{r.randrange(10**6)}", handle=f"@parent{r.randrange(5000)}")
            text, photo = self._pii(self._fill(r.choice(COMMENT_TEMPLATES)))
            created = self._time(0.3)
        elif roll < 0.75:
            kind, visibility, account = "reply", "public", "bench-facebook"
            author = Person(id=r.choice(self.staff).platform_ids[0])
            text, photo = self._pii(self._fill(r.choice(COMMENT_TEMPLATES)))
            created = self._time(0.1)
        else:
            kind, visibility, account = "direct_message", "direct", "bench-teams"
            staff, learner = r.choice(self.staff[5:]), r.choice(self.learners[:300])
            staff_p = Person(id=staff.platform_ids[0], name=staff.name)
            learner_p = Person(handle=learner.handles[0], name=learner.full_name)
            thread = f"dm-{staff.staff_id}-{learner.learner_id}"
            if r.random() < 0.8:
                author, recipients = staff_p, [learner_p]
                text = self._fill(r.choice(DM_TEMPLATES))
                if r.random() < 0.05:
                    text += r.choice(KISS_SIGNOFFS)
            else:
                author, recipients = learner_p, [staff_p]
                text = r.choice(["ok thanks", "can we move it?", "I'm stuck on unit 3",
                                 "sorry I was off sick", "cheers"])
            photo = False
            created = self._time(0.15)
        if photo:
            media = [Media(url=f"https://cdn.example/{self.n}.jpg", mime_type="image/jpeg")]
        return Item(
            id=f"i{self.n}", platform="facebook" if account == "bench-facebook" else "teams",
            account=account, kind=ItemKind(kind), author=author, recipients=recipients,
            created_at=created, visibility=Visibility(visibility), text=text, media=media,
            thread_id=thread,
        )


def available_rules() -> tuple[list[str], list[str]]:
    present: list[str] = []
    missing: list[str] = []
    for rule_id, target in DETECTORS.items():
        module = target.partition(":")[0]
        (present if importlib.util.find_spec(module) is not None else missing).append(rule_id)
    return present, missing


def chunks(factory: ItemFactory, index: RegisterIndex, total: int,
           size: int = 5000) -> Iterator[list[Item]]:
    done = 0
    while done < total:
        n = min(size, total - done)
        yield [index.resolve(factory.item()) for _ in range(n)]
        done += n


def run_one(rules: list[str], items: int, learners: int, seed: int) -> dict[str, Any]:
    """One configuration in this process: returns items/s, findings and peak RSS."""
    rng = random.Random(seed)
    registers = build_registers(rng, learners)
    index = RegisterIndex(registers)
    history = BenchHistory()
    ctx = DetectionContext(registers=index, history=history)
    engine = DetectionEngine.from_config(Config(), only=rules)
    factory = ItemFactory(rng, registers)
    warm = index.resolve(Item(
        id="warmup", platform="facebook", account="bench-facebook", kind=ItemKind.post,
        author=Person(id="fb:org"), created_at=factory.start, visibility=Visibility.public,
        text="Warm-up post",
    ))
    t0 = time.perf_counter()
    engine.detect(warm, ctx)  # builds the register matchers (timed separately)
    warmup = time.perf_counter() - t0
    busy = cpu = 0.0
    count = 0
    by_rule: dict[str, int] = defaultdict(int)
    clock, cpu_clock = time.perf_counter, time.thread_time
    for chunk in chunks(factory, index, items):
        for item in chunk:
            t, c = clock(), cpu_clock()
            findings = engine.detect(item, ctx)
            cpu += cpu_clock() - c
            busy += clock() - t
            history.record(item, findings)
            for f in findings:
                by_rule[f.rule_id] += 1
        count += len(chunk)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rules": engine.rule_ids, "items": count, "seconds": busy,
        "items_per_s": count / busy if busy else 0.0,
        "items_per_cpu_s": count / cpu if cpu else 0.0, "peak_rss_mb": peak_kib / 1024,
        "findings": dict(by_rule), "warmup_s": warmup,
    }


def child(rules: list[str], args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", ",".join(rules), "--items", str(args.items),
           "--learners", str(args.learners), "--seed", str(args.seed), "--cpu", str(args.cpu)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


QUICK = ["--items", "20000"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", default="learner_pii,out_of_hours,tone",
                        help="comma-separated rule ids (the issue's target: these three); "
                             "'all' for every rule in rules.engine.DETECTORS")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--learners", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU (-1: do not pin)")


def run(bench: Bench, args: argparse.Namespace) -> None:
    present, missing = available_rules()
    if args.rules != "all":
        wanted = [r for r in args.rules.split(",") if r]
        present = [r for r in wanted if r in present]
    bench.param(items=args.items, learners=args.learners, cpu=args.cpu, seed=args.seed,
                rules=present, missing=missing)
    configs: list[list[str]] = [[]]  # no detector: the cost of the harness itself
    configs += [[r] for r in present]
    if len(present) > 1:
        configs.append(present)
    rows = [child(c, args) for c in configs]
    table = []
    for row in rows:
        found = ", ".join(f"{k} {v:,}" for k, v in sorted(row["findings"].items()))
        name = " + ".join(row["rules"]) or "(none: engine and harness only)"
        table.append([name, row["items_per_s"], row["items_per_cpu_s"], row["seconds"],
                      row["peak_rss_mb"], row["warmup_s"], found])
    bench.table(f"{args.items:,} items, {args.learners:,} learners, each row its own process "
                f"pinned to CPU {args.cpu}",
                ["detectors", "items/s", "items/CPU-s", "seconds", "peak RSS MiB", "setup s",
                 "findings"], table,
                note="items/s: wall clock of the detect calls; items/CPU-s: this thread's CPU "
                     "time for the same calls (the machine is shared, so the two differ when "
                     "other work runs); setup: the first item, which builds the register "
                     "matchers." + (f" Skipped (module not written yet): {', '.join(missing)}."
                                    if missing else ""))
    together = rows[-1]
    ok = together["items_per_s"] >= 5000 and together["peak_rss_mb"] < 500
    bench.target(f"{' + '.join(together['rules'])} over {args.items:,} items with "
                 f"{args.learners:,} learners: >= 5,000 items/s on one core, < 500 MB (issue 2)",
                 f"{together['items_per_s']:,.0f} items/s, {together['peak_rss_mb']:.0f} MiB",
                 ok, value=together["items_per_s"], limit=5000, unit="items/s")


def main(argv: list[str] | None = None) -> int:
    """A child process: one configuration, its result as JSON on stdout."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--child", required=True)
    args = parser.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    rules = [r for r in args.child.split(",") if r]
    print(json.dumps(run_one(rules, args.items, args.learners, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
