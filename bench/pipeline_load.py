"""Pipeline load and time-to-alert: sustained ingest and webhook bursts with every rule on.

Run from the repository root::

    .venv/bin/python bench/run.py pipeline_load         # SQLite scenarios and cost growth
    GOVERNANCE_BOT_TEST_PG_URL=postgresql+psycopg://... \\
        .venv/bin/python bench/run.py pipeline_load     # adds PostgreSQL with two replicas

What is measured (all in one run, so the ratios compare like with like):

* **sustained jsonl ingest** at a fixed arrival rate (default 50 items/s, open loop: an item's
  "received" time is when it was due to arrive, so falling behind shows up as latency). Lines are
  parsed by the jsonl connector's own parser and go through ``Pipeline.process_many`` as a
  tailing reader would hand them over (everything that arrived while the previous batch was
  being checked); when an item raised a flag the outbox is drained at once (as the service does
  after each webhook batch) through the real ``SlackSink``/``slack_sdk`` client to the local fake
  Slack (tests/slack/fake_slack.py), which runs in a process of its own (the real Slack is not in
  the service's process; the fake still uses this machine's CPU) and records when each
  ``chat.postMessage`` arrives.
  Time-to-alert = that arrival - the item's received time, for every flag posted at once (the
  digest-route flags wait for the daily digest by design and are not counted).
* **webhook bursts**: signed Meta feed events (``X-Hub-Signature-256`` with the app secret)
  POSTed over HTTP to the service's ``/webhooks/<name>``, served by uvicorn as ``governance-bot
  run`` serves it (signature check, connector parsing, the ingest worker's batches, pipeline and
  the service's drain before answering). The platform's side runs in a process of its own (it
  still uses this machine's CPU; only the service's process is counted in "CPU ms/item"):
  bursts of 25 events, each sent at once over concurrent keep-alive connections; a burst waits
  for the one before it, so a service that falls behind shows as a lower rate. Pipeline latency
  here is each delivery's answer time (the service answers once the item's alerts are sent).
* **PostgreSQL, two replicas**: two processes on one database, each taking half the arrivals,
  each with its own outbox sender (claims with ``FOR UPDATE SKIP LOCKED``).
* **cost growth**: closed-loop ms per item with 100, 1,000 and 10,000 learners in the register,
  and with messages of 50 to 5,000 characters.

Learner names are combinations of the invented names in ../shared/datasets/fake-identities and a
list written here; the posts are this project's own.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # a helper process (--replica, --fake-slack, --webhook-client)
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.harness import Bench  # noqa: E402
from governance_bot.storage import models as m  # noqa: E402
from governance_bot.storage.db import Database  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402

EXAMPLE_REGISTERS = ROOT / "examples" / "registers.toml"
IDENTITIES = Path(os.environ.get("GOVERNANCE_BOT_SHARED", ROOT.parent / "shared")) / \
    "datasets" / "fake-identities" / "fake_identities_gb.csv"
EXTRA_FIRST = ["Ada", "Bea", "Cal", "Dev", "Ela", "Finn", "Gus", "Hana", "Ivo", "Jude", "Kit",
               "Lila", "Milo", "Nia", "Otis", "Pia", "Quin", "Rhea", "Sol", "Tia", "Umar",
               "Vera", "Wren", "Xan", "Yara", "Zac", "Arlo", "Bryn", "Cleo", "Dara", "Ezra",
               "Faye", "Gio", "Hope", "Ines", "Joss", "Kai", "Luca", "Mae", "Nell"]
APP_SECRET = "bench-meta-app-secret"
PAGE = "104000000001"
SENTENCES = (
    "Thank you to every family who came to the open evening on Thursday.",
    "Our Year 9 netball team played brilliantly against Riverside this weekend.",
    "The library will be open until five during the mock exam fortnight.",
    "Reminder that the trip letters need to be back with form tutors by Friday.",
    "Huge congratulations to the choir on their performance at the town hall.",
    "Please check the website for the updated bus timetable after half term.",
)


# --- data ------------------------------------------------------------------------------------
def learner_names(n: int) -> list[tuple[str, str]]:
    firsts: list[str] = list(EXTRA_FIRST)
    lasts: list[str] = []
    if IDENTITIES.exists():
        with IDENTITIES.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                firsts.append(row["GivenName"])
                lasts.append(row["Surname"])
    lasts = sorted(set(lasts)) or ["Ashdown", "Okonjo", "Pemberton", "Quayle", "Rowntree"]
    firsts = sorted(set(firsts))
    pairs = [(f, s) for s in lasts for f in firsts]
    random.Random(7).shuffle(pairs)
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} name combinations for {n} learners")
    return pairs[:n]


def write_registers(folder: Path, n_learners: int) -> list[tuple[str, str]]:
    names = learner_names(n_learners)
    with (folder / "learners.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["learner_id", "first_name", "last_name", "preferred_name", "date_of_birth",
                    "email", "photo_consent", "comms_consent", "employer", "handles"])
        for i, (first, last) in enumerate(names):
            w.writerow([f"B{i:05d}", first, last, "", f"20{10 + i % 5}-0{1 + i % 9}-1{i % 9}",
                        f"{first}.{last}.{i}@students.brookfield.example.org".lower(),
                        "yes" if i % 4 else "no", "yes", "", ""])
    return names


def text_for(i: int, names: list[tuple[str, str]], length: int | None = None) -> str:
    rng = random.Random(i)
    parts = [rng.choice(SENTENCES)]
    if i % 3 == 0:  # a third name a learner in full: learner_pii flags them to the managers
        first, last = names[rng.randrange(len(names))]
        parts.insert(0, f"Well done to {first} {last} on Saturday.")
    target = length or rng.choice((80, 160, 280, 600))
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(rng.choice(SENTENCES))
    return " ".join(parts)[: max(target, len(parts[0]))]


def item_dict(i: int, names: list[tuple[str, str]], prefix: str, length: int | None = None
              ) -> dict[str, Any]:
    return {"id": f"{prefix}{i}", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "comment", "author": {"id": f"61000{i % 97:05d}", "name": "A Parent"},
            "created_at": datetime(2026, 11, 20, 10, 0, i % 60, tzinfo=UTC).isoformat(),
            "text": text_for(i, names, length), "thread_id": f"{PAGE}_1",
            "parent_id": f"{PAGE}_1", "url": f"https://facebook.example/{prefix}{i}"}


PIPELINE_BATCH = int(os.environ.get("BENCH_PIPELINE_BATCH", "64"))  # the tailing reader's
TOXICITY = '[classifiers.toxicity]\nallow_fallback = true\n'  # set by --detoxify


def make_config(folder: Path, url: str, fake: SlackProcess | None) -> Path:
    path = folder / "config.toml"
    delivery = (f'[delivery]\nsink = "slack"\n[slack]\nenabled = true\napi_url = '
                f'"{fake.base_url}"\n' if fake else '[delivery]\nsink = "console"\n')
    path.write_text(
        f'[database]\nurl = "{url}"\n[registers]\nfile = "{EXAMPLE_REGISTERS}"\n'
        f'learners = "{folder / "learners.csv"}"\n[detection]\ndisabled_rules = []\n'
        f'[service]\noutbox_interval_seconds = 1\n{delivery}{TOXICITY}'
        f'[[connectors]]\nname = "fb"\ntype = "facebook"\naccount = "brookfield-facebook"\n'
        f'page_id = "{PAGE}"\naccess_token = "${{BENCH_FB_TOKEN}}"\n'
        'app_secret = "${BENCH_META_SECRET}"\nverify_token = "${BENCH_FB_VERIFY}"\nbase_url = "http://127.0.0.1:9"\n'
        "poll_interval_seconds = 3600\n")
    return path


def env() -> dict[str, str]:
    return {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench",
            "BENCH_FB_TOKEN": "bench-token", "BENCH_META_SECRET": APP_SECRET,
            "BENCH_FB_VERIFY": "bench-verify"}


# --- the fake Slack in its own process ---------------------------------------------------------
class SlackProcess:
    """tests/slack/fake_slack.py's FakeSlack, run in a child process: the real Slack is not in
    the service's process, so the fake's HTTP handling must not compete for the benchmark
    process's interpreter lock (it still uses this machine's CPU). Its call times are
    ``time.perf_counter`` (CLOCK_MONOTONIC on Linux), comparable across processes."""

    def __enter__(self) -> SlackProcess:
        self._proc = subprocess.Popen([sys.executable, __file__, "--fake-slack"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise SystemExit(f"the fake Slack did not start ({self._proc.wait()})")
        self._posts: list[Any] | None = None
        return self

    def calls(self, method: str) -> list[Any]:
        """The successful ``chat.postMessage`` calls so far (read once, at the end)."""
        assert method == "chat.postMessage"
        if self._posts is None:
            out, _ = self._proc.communicate("calls\n", timeout=120)
            self._posts = [SimpleNamespace(params={"metadata": c["metadata"]}, at=c["at"])
                           for c in json.loads(out)]
        return self._posts

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def serve_fake_slack() -> None:
    with FakeSlack() as fake:
        print(fake.base_url, flush=True)
        sys.stdin.readline()
        print(json.dumps([{"metadata": c.params.get("metadata"), "at": c.at}
                          for c in fake.calls("chat.postMessage")]), flush=True)


# --- one replica: paced ingest with a sender thread --------------------------------------------
def replica(config_path: Path, lines_path: Path, rate: float, start_at: float | None,
            start_after: float | None = None) -> dict[str, Any]:
    """Feed the lines at ``rate``/s from ``start_at`` (perf_counter; None: ``start_after``
    seconds once ready, or without it print "ready" and read it from stdin); return received
    and processed times. The clock never starts before the replica is ready."""
    os.environ.update(env())
    from connectors.jsonl import LineProblem, parse_line
    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime, freeze_startup_objects
    from governance_bot.slack.service import ANCHOR_REFRESH_SECONDS
    from governance_bot.slack.sink import SlackSink

    config = load_config(config_path)
    rt = Runtime.from_config(config, import_registers_from_config=False, with_connectors=False)
    # as the service builds it (a thread's first alert is refreshed at most every few seconds)
    sender = rt.sender(SlackSink.from_config(config, rt.db,
                                             anchor_refresh_seconds=ANCHOR_REFRESH_SECONDS))
    lines = lines_path.read_text(encoding="utf-8").splitlines()
    # warm-up, outside the measurement: the first items load the matchers and lexicons lazily
    for n, line in enumerate(lines[:5]):
        warm = parse_line(line.replace('"id": "', '"id": "warm-'), lines_path, n + 1)
        if warm is not None and not isinstance(warm, LineProblem):
            rt.pipeline.process_many([warm])
    freeze_startup_objects()  # as `governance-bot run` does before it serves
    received: dict[str, float] = {}
    processed: dict[str, float] = {}
    if start_at is None and start_after is not None:
        start_at = time.perf_counter() + start_after
    elif start_at is None:
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
    cpu0 = time.process_time()
    while time.perf_counter() < start_at:
        time.sleep(0.005)
    n = 0
    pending: tuple[Any, list[Any]] | None = None
    while n < len(lines) or pending is not None:
        # a tailing reader, as the service's webhook worker: whatever has arrived by now (up to
        # a batch) is archived and its models started; then the batch before it is recorded and
        # its alerts sent, so the two overlap. With nothing in progress it waits for a line.
        arrived = min(len(lines), int((time.perf_counter() - start_at) * rate) + 1)
        if arrived <= n and pending is None:
            time.sleep(max(0.0, start_at + n / rate - time.perf_counter()))
            continue
        started = None
        if arrived > n:
            batch = []
            upto = min(arrived, n + PIPELINE_BATCH)
            for k in range(n, upto):
                parsed = parse_line(lines[k], lines_path, k + 1)
                if parsed is None or isinstance(parsed, LineProblem):
                    continue
                received[parsed.id] = start_at + k / rate
                batch.append(parsed)
            n = upto
            started = (rt.pipeline.begin(batch), batch)
        if pending is not None:
            report = rt.pipeline.finish(pending[0])
            done = time.perf_counter()
            for item in pending[1]:
                processed[item.id] = done
            if report.flags_created or report.flags_updated:
                sender.drain()  # as the service does after a webhook batch: send at once
        pending = started
    finished = time.perf_counter()
    deadline = time.monotonic() + 60
    while sender.pending() and time.monotonic() < deadline:  # another replica's claims
        sender.drain()
        time.sleep(0.05)
    cpu = time.process_time() - cpu0
    rt.close()
    return {"received": received, "processed": processed, "finished": finished, "cpu": cpu}


@dataclass
class Result:
    name: str
    items: int
    seconds: float
    alerts: list[float] = field(default_factory=list)
    flags: int = 0
    cpu: float = 0.0
    pipeline: list[float] = field(default_factory=list)

    @staticmethod
    def pct(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    def cells(self) -> list[Any]:
        a, q = self.alerts, self.pipeline
        return [self.name, self.items, self.items / self.seconds, self.cpu / self.items * 1000,
                f"{self.pct(q, 50) * 1000:.0f} / {self.pct(q, 95) * 1000:.0f} / "
                f"{self.pct(q, 99) * 1000:.0f}", len(a), self.pct(a, 50) * 1000,
                self.pct(a, 95) * 1000, self.pct(a, 99) * 1000, max(a, default=0) * 1000]

    def row(self) -> str:
        return "| " + " | ".join(str(c) for c in self.cells()) + " |"


def alert_times(url: str, fake: SlackProcess, received: dict[str, float]
                ) -> tuple[list[float], int]:
    db = Database(url)
    with db.session() as s:
        by_flag = dict(s.execute(select(m.Flag.id, m.ItemRecord.native_id).join(
            m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)).all())
    db.dispose()
    first: dict[int, float] = {}
    for call in fake.calls("chat.postMessage"):
        meta = call.params.get("metadata")
        if isinstance(meta, dict):
            fid = int(meta["event_payload"]["flag_id"])
            first[fid] = min(first.get(fid, call.at), call.at)
    out = [at - received[by_flag[fid]] for fid, at in first.items()
           if by_flag.get(fid) in received]
    return out, len(by_flag)


def prepare(folder: Path, url: str, fake: SlackProcess | None, learners: int) -> tuple[Path, Any]:
    os.environ.update(env())
    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime

    names = write_registers(folder, learners)
    config_path = make_config(folder, url, fake)
    Runtime.from_config(load_config(config_path)).close()  # schema + register import, once
    return config_path, names


def sustained(name: str, url: str, folder: Path, rate: float, seconds: float,
              replicas: int, learners: int) -> Result:
    folder.mkdir(parents=True, exist_ok=True)
    with SlackProcess() as fake:
        config_path, names = prepare(folder, url, fake, learners)
        total = int(rate * seconds)
        files = []
        for r in range(replicas):
            path = folder / f"replica{r}.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for i in range(r, total, replicas):
                    fh.write(json.dumps(item_dict(i, names, "s")) + "\n")
            files.append(path)
        if replicas == 1:
            outs = [replica(config_path, files[0], rate, None, start_after=1.0)]
        else:
            procs = [subprocess.Popen(
                [sys.executable, __file__, "--replica", str(config_path), str(f),
                 str(rate / replicas), "-"], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                env=env(), text=True) for f in files]
            for p in procs:  # every replica started up (imports, matchers) before the clock runs
                assert p.stdout is not None
                while (line := p.stdout.readline()) and line.strip() != "ready":
                    pass  # start-up notes (the toxicity fallback says which model it uses)
                if not line:
                    raise SystemExit(f"a replica failed to start ({p.wait()})")
            start_at = time.perf_counter() + 1
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(f"{start_at!r}\n")
                p.stdin.flush()
            outs = []
            for p in procs:
                out, _ = p.communicate(timeout=seconds + 300)
                if p.returncode != 0:
                    raise SystemExit(f"replica failed ({p.returncode})")
                outs.append(json.loads(out.strip().splitlines()[-1]))
        received: dict[str, float] = {}
        pipeline: list[float] = []
        for o in outs:
            received.update(o["received"])
            pipeline.extend(o["processed"][k] - o["received"][k] for k in o["processed"])
        if os.environ.get("BENCH_TRACE"):  # the slowest item per second of arrival, per replica
            t0 = min(received.values())
            for r, o in enumerate(outs):
                worst: dict[int, float] = {}
                for k, at in o["received"].items():
                    s = int(at - t0)
                    worst[s] = max(worst.get(s, 0.0), o["processed"][k] - at)
                print(f"  replica {r}: " + " ".join(f"{s}s:{w * 1000:.0f}"
                                                    for s, w in sorted(worst.items())),
                      file=sys.stderr)
        start = min(received.values())
        elapsed = max(o["finished"] for o in outs) - start
        alerts, flags = alert_times(url, fake, received)
    return Result(name, len(received), elapsed, alerts, flags, sum(o["cpu"] for o in outs),
                  pipeline)


def webhook_event(i: int, names: list[tuple[str, str]]) -> bytes:
    """Meta's feed event for comment ``i`` (as the platform sends it)."""
    d = item_dict(i, names, "w")
    event = {"object": "page", "entry": [{"id": PAGE, "time": 1789990000, "changes": [{
        "field": "feed", "value": {
            "from": {"id": d["author"]["id"], "name": "A Parent"}, "item": "comment",
            "verb": "add", "created_time": 1789990000 + i, "post_id": f"{PAGE}_900001",
            "parent_id": f"{PAGE}_900001", "comment_id": f"900001_{i}",
            "message": d["text"]}}]}]}
    return json.dumps(event).encode()


def webhook_client(base_url: str, learners: int, total: int, rate: float, burst: int) -> None:
    """The platform's side, in a process of its own: bursts of ``burst`` signed deliveries,
    each burst sent at once over concurrent keep-alive connections (as Meta sends them) when it
    is due; prints each delivery's send time and answer time (perf_counter: CLOCK_MONOTONIC,
    comparable with the service's process)."""
    import httpx

    from connectors.meta import sign

    names = learner_names(learners)
    bodies = [webhook_event(i, names) for i in range(total)]
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    with httpx.Client(base_url=base_url, timeout=120,
                      limits=httpx.Limits(max_connections=burst)) as http, \
            ThreadPoolExecutor(burst) as pool:
        def post(i: int) -> None:
            key = f"900001_{i}"
            sent[key] = time.perf_counter()
            resp = http.post("/webhooks/fb", content=bodies[i], headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(bodies[i], APP_SECRET)})
            if resp.status_code != 200:
                raise SystemExit(f"webhook answered {resp.status_code}")
            answered[key] = time.perf_counter()

        for f in [pool.submit(post, i) for i in range(burst)]:  # connections opened
            f.result()
        sent.clear()
        answered.clear()
        print("ready", flush=True)
        start = float(sys.stdin.readline())
        offset = burst  # the warm-up's comments are not counted
        for b in range(offset, offset + total - burst, burst):
            due = start + (b - offset) / rate
            while time.perf_counter() < due:
                time.sleep(0.002)
            # a burst waits for the one before it: a slow service shows as a lower rate
            for f in [pool.submit(post, i) for i in range(b, min(offset + total - burst,
                                                                  b + burst))]:
                f.result()
    print(json.dumps({"sent": sent, "answered": answered}), flush=True)


def webhook_bursts(url: str, folder: Path, rate: float, seconds: float, learners: int,
                   burst: int = 25) -> Result:
    """The service's own HTTP server (uvicorn, as ``governance-bot run`` serves it) in this
    process; the platform's deliveries from another process (:func:`webhook_client`)."""
    folder.mkdir(parents=True, exist_ok=True)
    import socket
    import threading

    import uvicorn

    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime, freeze_startup_objects
    from governance_bot.service import Service, _Server

    with SlackProcess() as fake:
        config_path, _names = prepare(folder, url, fake, learners)
        rt = Runtime.from_config(load_config(config_path), import_registers_from_config=False)
        service = Service(rt)
        freeze_startup_objects()  # as `governance-bot run` does before it serves
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        server = _Server(uvicorn.Config(service.http_app(), host="127.0.0.1", port=port,
                                        log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        total = int(rate * seconds)
        client = subprocess.Popen(
            [sys.executable, __file__, "--webhook-client", f"http://127.0.0.1:{port}",
             str(learners), str(total + burst), str(rate), str(burst)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env(), text=True)
        try:
            assert client.stdout is not None and client.stdin is not None
            while (line := client.stdout.readline()) and line.strip() != "ready":
                pass
            if not line:
                raise SystemExit(f"the webhook client failed to start ({client.wait()})")
            service.drain()  # the warm-up burst's alerts, outside the measurement
            cpu0 = time.process_time()
            start = time.perf_counter() + 0.5
            client.stdin.write(f"{start!r}\n")
            client.stdin.flush()
            out, _ = client.communicate(timeout=seconds + 300)
            if client.returncode != 0:
                raise SystemExit(f"the webhook client failed ({client.returncode})")
            times = json.loads(out.strip().splitlines()[-1])
            elapsed = max(times["answered"].values()) - start
            service.drain()
            cpu = time.process_time() - cpu0
        finally:
            if client.poll() is None:
                client.kill()
            server.should_exit = True
            thread.join(timeout=30)
        received = times["sent"]
        pipeline = [times["answered"][k] - received[k] for k in received]
        alerts, flags = alert_times(url, fake, received)
        rt.close()
    return Result(f"webhook bursts of {burst}, SQLite, 1 process", len(received), elapsed,
                  alerts, flags, cpu, pipeline)


def closed_loop(folder: Path, learners: int, length: int | None, n: int) -> tuple[float, float]:
    """ms per item (mean, p95) processing n items back to back (console sink, no delivery)."""
    folder.mkdir(parents=True, exist_ok=True)
    from governance_bot.config import load_config
    from governance_bot.items import Item
    from governance_bot.runtime import Runtime

    config_path, names = prepare(folder, f"sqlite:///{folder / 'gb.db'}", None, learners)
    rt = Runtime.from_config(load_config(config_path), import_registers_from_config=False,
                             with_connectors=False)
    items = [Item.model_validate(item_dict(i, names, "c", length)) for i in range(n)]
    rt.pipeline.process_many(items[:5])  # warm-up (lazy model and matcher loading)
    times = []
    for it in items[5:]:
        t0 = time.perf_counter()
        rt.pipeline.process_many([it])
        times.append(time.perf_counter() - t0)
    rt.close()
    times.sort()
    return statistics.mean(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


def per_rule(folder: Path, n: int = 40) -> list[tuple[str, float, float]]:
    """Each detector alone on the same items: (rule id, wall ms/item, CPU ms/item)."""
    folder.mkdir(parents=True, exist_ok=True)
    from governance_bot.config import load_config
    from governance_bot.items import Item
    from governance_bot.runtime import Runtime

    config_path, names = prepare(folder, f"sqlite:///{folder / 'gb.db'}", None, 1000)
    rt = Runtime.from_config(load_config(config_path), import_registers_from_config=False,
                             with_connectors=False)
    items = [rt.registers.resolve(Item.model_validate(item_dict(i, names, "r")))
             for i in range(n + 1)]
    ctx = rt.pipeline.context()
    out = []
    for detector in rt.engine.detectors:
        list(detector.detect(items[0], ctx))  # warm-up
        wall, cpu = time.perf_counter(), time.process_time()
        for it in items[1:]:
            list(detector.detect(it, ctx))
        out.append((detector.rule_id, (time.perf_counter() - wall) / n * 1000,
                    (time.process_time() - cpu) / n * 1000))
    rt.close()
    return out


COLUMNS = ["scenario", "items", "items/s achieved", "CPU ms/item",
           "pipeline latency ms p50 / p95 / p99", "alerts", "time-to-alert p50 ms", "p95 ms",
           "p99 ms", "max ms"]
QUICK = ["--seconds", "5", "--skip-growth"]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--pg", default=os.environ.get("GOVERNANCE_BOT_TEST_PG_URL"))
    ap.add_argument("--skip-growth", action="store_true")
    ap.add_argument("--per-rule", action="store_true", help="only time each rule alone")
    ap.add_argument("--detoxify", type=Path, help="toxicity by Detoxify 'original' from this "
                    "folder (original.ckpt + original-hf/, as toxicity_speed --work leaves them) "
                    "instead of the shipped fallback model")


def _use_detoxify(folder: Path | None) -> None:
    global TOXICITY
    if folder:
        TOXICITY = (f'[classifiers.toxicity]\nmodel = "original"\n'
                    f'checkpoint = "{folder / "original.ckpt"}"\n'
                    f'huggingface_config_path = "{folder / "original-hf"}"\n')


def run(bench: Bench, args: argparse.Namespace) -> None:
    _use_detoxify(args.detoxify)
    from rules.engine import DETECTORS

    bench.param(rate=args.rate, seconds=args.seconds, learners=args.learners,
                postgresql=bool(args.pg), rules=list(DETECTORS),
                toxicity="Detoxify original" if args.detoxify else "fallback (alt-profanity-check)")
    results: list[Result] = []
    with TemporaryDirectory(prefix="gb-bench-") as tmp:
        root = Path(tmp)
        if args.per_rule:
            bench.table("Each rule alone on the same items", ["rule", "wall ms/item",
                                                               "CPU ms/item"],
                        per_rule(root / "rules"))
            return
        results.append(sustained("jsonl sustained, SQLite, 1 process",
                                 f"sqlite:///{root / 's1' / 'gb.db'}", root / "s1", args.rate,
                                 args.seconds, 1, args.learners))
        print(results[-1].row(), flush=True)
        results.append(webhook_bursts(f"sqlite:///{root / 'w1' / 'gb.db'}", root / "w1",
                                      args.rate, args.seconds, args.learners))
        print(results[-1].row(), flush=True)
        if args.pg:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            name = f"gb_bench_{os.getpid()}"
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                results.append(sustained("jsonl sustained, PostgreSQL, 2 replicas", url,
                                         root / "p2", args.rate, args.seconds, 2,
                                         args.learners))
                print(results[-1].row(), flush=True)
            finally:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        else:
            bench.note("PostgreSQL skipped: set GOVERNANCE_BOT_TEST_PG_URL or --pg")
        bench.table(f"Every rule on, {args.rate:.0f} items/s for {args.seconds:.0f} s per "
                    f"scenario, {args.learners} learners in the register",
                    COLUMNS, [r.cells() for r in results])
        worst = max(Result.pct(r.pipeline, 95) for r in results)
        bench.target(f"pipeline p95 < 1 s at {args.rate:.0f} items/s with models on (issue 8)",
                     "; ".join(f"{r.name}: p95 {Result.pct(r.pipeline, 95) * 1000:.0f} ms, "
                               f"{r.items / r.seconds:.1f} items/s" for r in results),
                     worst < 1.0, value=worst * 1000, limit=1000, unit="ms")
        if args.skip_growth:
            return
        rows = []
        for n in (100, 1000, 10000):
            mean, p95 = closed_loop(root / f"g{n}", n, None, 150)
            rows.append([n, mean, p95])
        bench.table("Cost per item, closed loop (SQLite, console sink), by learners in the "
                    "register", ["learners in register", "ms/item mean", "ms/item p95"], rows)
        rows = []
        for length in (50, 500, 2000, 5000):
            mean, p95 = closed_loop(root / f"l{length}", args.learners, length, 150)
            rows.append([length, mean, p95])
        bench.table("Cost per item, closed loop, by message length",
                    ["message length (chars)", "ms/item mean", "ms/item p95"], rows)


def main() -> None:
    """The helper processes the benchmark starts (replicas, the fake Slack, the webhook client)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    ap.add_argument("--replica", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--fake-slack", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--webhook-client", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fake_slack:
        serve_fake_slack()
        return
    if args.webhook_client:
        base, n, total, rate, burst = args.webhook_client
        webhook_client(base, int(n), int(total), float(rate), int(burst))
        return
    _use_detoxify(args.detoxify)
    if args.replica:
        cfg, lines, rate, start_at = args.replica
        out = replica(Path(cfg), Path(lines), float(rate),
                      None if start_at == "-" else float(start_at))
        print(json.dumps(out))
        return
    raise SystemExit("run it with: .venv/bin/python bench/run.py pipeline_load")


if __name__ == "__main__":
    main()
