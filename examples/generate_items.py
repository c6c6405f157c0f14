#!/usr/bin/env python3
"""Write the example organisation's items: ``examples/items/<account>.jsonl``.

Brookfield Academy (examples/registers.toml) is invented, and so is everything here: a few hundred
posts, comments and messages on its Facebook, Instagram and X accounts, its Teams chats and its
journalled email, in the normalised item format (docs/items.md). Most are ordinary (sports day,
trips, term dates, reminders) and must not be flagged; the rest exercise every detector:

* learner_pii: learners' names, handles, hashtags, phone numbers, postcodes, emails and dates of
  birth in public posts and comments;
* out_of_hours: staff -> learner messages late at night, at weekends, on bank holidays, a staff
  reply out of hours, and a repeated pattern (one tutor, one learner, four in two weeks);
* tone: "see you tomorrow xx", pet names, over-familiar language;
* safeguarding (self-harm, grooming, a disclosure), toxicity, commerce (scams), personal-account
  contact, unapproved photos, a one-to-one thread, a meeting, and an edited item (same id twice).

``examples/items/zz-malformed.jsonl`` holds two malformed lines (and two good ones) to show how
bad input is reported. ``examples/expected-findings.json`` lists, for every item key, the
scenario it belongs to and the categories it is meant to raise ([] for ordinary items).

Run from anywhere: ``python examples/generate_items.py``. The seed is fixed, so the output only
changes when this script does; commit both.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

HERE = Path(__file__).resolve().parent
OUT = HERE / "items"
SEED = 20260105
TZ = ZoneInfo("Europe/London")
BANK_HOLIDAYS = holidays.country_holidays("GB", subdiv="ENG", years=[2026])
CLOSURES = {date(2026, 2, 23)}  # INSET day (examples/config.toml)
# school holidays between the terms of examples/config.toml
HALF_TERMS = [(date(2026, 2, 14), date(2026, 2, 22)), (date(2026, 3, 28), date(2026, 4, 12)),
              (date(2026, 5, 23), date(2026, 5, 31))]

ACCOUNTS: dict[str, dict[str, Any]] = {
    "brookfield-facebook": {"platform": "facebook", "id": "104000000001",
                            "handle": "BrookfieldAcademy"},
    "brookfield-instagram": {"platform": "instagram", "id": "178400000001",
                             "handle": "@brookfield.academy"},
    "brookfield-x": {"platform": "x", "id": "1500000001", "handle": "@BrookfieldAcad"},
    "brookfield-teams": {"platform": "teams", "id": None, "handle": "brookfield.example.org"},
    "brookfield-email": {"platform": "email", "id": None,
                         "handle": "journal@brookfield.example.org"},
}

STAFF = {
    "S001": ("Helen Okafor", "h.okafor@brookfield.example.org", None),
    "S002": ("Marcus Reid", "m.reid@brookfield.example.org", None),
    "S004": ("Tom Ashworth", "t.ashworth@brookfield.example.org", "teams:aad-0004"),
    "S005": ("Grace Lindqvist", "g.lindqvist@brookfield.example.org", "teams:aad-0005"),
    "S006": ("Daniel Mensah", "d.mensah@brookfield.example.org", "teams:aad-0006"),
    "S007": ("Sophie Carrington", "s.carrington@brookfield.example.org", "teams:aad-0007"),
    "S009": ("Aisha Rahman", "a.rahman@brookfield.example.org", "teams:aad-0009"),
}
TUTORS = ["S006", "S007", "S009"]

# learner id -> (name, school email, first social handle)
LEARNERS = {
    "L001": ("Jayden Price", "jayden.price", "@jaydenprice10"),
    "L002": ("Maisie O'Connell", "maisie.oconnell", "@maisie.fb"),
    "L003": ("Oliver Smith-Hughes", "oliver.smithhughes", "@olly_sh"),
    "L004": ("Amira Haddad", "amira.haddad", "@amira.h.art"),
    "L005": ("Kacper Zielinski", "kacper.zielinski", "@kacperz"),
    "L006": ("Ruby Fletcher", "ruby.fletcher", "@rubyfletch"),
    "L007": ("Ethan Nwosu", "ethan.nwosu", "@ethan_nw"),
    "L008": ("Chloe Brennan", "chloe.brennan", "@chloebrennan_"),
    "L009": ("Harvey Doyle", "harvey.doyle", "@harvdoyle"),
    "L010": ("Zara Ahmed", "zara.ahmed", "@zara.ahmed12"),
    "L011": ("William Turner", "william.turner", "@willt_10"),
    "L012": ("Freya MacLeod", "freya.macleod", "@freya.mac"),
    "L013": ("Lily Hill", "lily.hill", "@lilyhill_11"),
    "L014": ("Alexander Dale", "alexander.dale", "@alexdale10"),
    "L015": ("Zoe Fyodorova", "zoe.fyodorova", "@zoe.fyo"),
    "L016": ("Benjamin Iversen", "benjamin.iversen", "@ben_iversen"),
    "L017": ("Jacob Schou", "jacob.schou", "@jacobschou"),
    "L018": ("Sarah Pereira", "sarah.pereira", "@sarah.pereira.art"),
    "L019": ("Jamie Holm", "jamie.holm", "@jamieholm9"),
    "L020": ("Alexandra Bradley", "alexandra.bradley", "@lexibradley"),
    "L021": ("Erik Eberhardt", "erik.eberhardt", "@erik.eberhardt"),
    "L022": ("Felicia Magnusson", "felicia.magnusson", "@felicia.m"),
    "L023": ("Lukas Bayer", "lukas.bayer", "@lukasbayer10"),
    "L024": ("Rebecca Sundberg", "rebecca.sundberg", "@beccasundberg"),
    "L025": ("Danilo Oliveira", "danilo.oliveira", "@danilo.oli"),
    "L026": ("Hana Bláhová", "hana.blahova", "@hana.blahova"),
    "L027": ("Morgan King", "morgan.king", "@morganking_"),
    "L028": ("Gustavo Azevedo", "gustavo.azevedo", "@gus.azevedo"),
    "L029": ("Scarlett Annear", "scarlett.annear", "@scarlett.annear"),
    "L030": ("Zak Leonard", "zak.leonard", "@zakleonard"),
}

# people who are not in the registers: parents, neighbours, the public
PUBLIC = [
    ("Karen P", "@karenp_mum"), ("Steve Wardle", "@stevewardle71"), ("Nadia Khan", "@nadiak"),
    ("Gareth Lloyd", "@gaz_lloyd"), ("Bev Simmonds", "@bevsimmonds"), ("Raj Patel", "@rajp"),
    ("Tracy Holt", "@tracy.holt"), ("Ian Booth", "@boothy_ian"), ("Joanne Ferris", "@jo_ferris"),
    ("Mike Dunn", "@mikedunn_"), ("Lorraine Shaw", "@lorraine.shaw"), ("Paul Ogden", "@p.ogden"),
]

# ------------------------------------------------------------------------------------------------
# ordinary content
# ------------------------------------------------------------------------------------------------
ORG_POSTS = [
    "Sports day is on Friday 3 July. Please send your child in PE kit with a named water bottle.",
    "Reminder: school closes at 1:30pm on the last day of term.",
    "Term dates for 2026-27 are now on our website under Parents > Term dates.",
    "Our Year 8 geography trip to the coast was a great success. Thank you to all the staff who "
    "made it happen!",
    "The Year 11 exam timetable has been emailed to families today.",
    "Parents' evening for Year 9 is on Thursday from 4pm to 7pm. Book your slots online.",
    "Well done to our Under-14 netball team, who reached the county semi-final.",
    "Our Christmas jumper day raised £612 for the local food bank. Thank you all!",
    "Due to the snow the school will open at 10am tomorrow. Buses will run to the late timetable.",
    "Open evening for prospective Year 7 families: Wednesday 7 October, 5pm to 8pm.",
    "The school library will be open during the Easter holiday on Tuesdays, 10am to 2pm.",
    "Congratulations to our apprentices who completed their Level 3 qualifications this month.",
    "Lost property will be on display in the main hall on Friday. Anything unclaimed goes to "
    "the charity shop.",
    "The canteen menu for next week is on the website, including the new vegetarian options.",
    "Year 10 work experience letters go home today. Please return the form by 20 March.",
    "Thank you to everyone who came to the spring concert. What a wonderful evening of music!",
    "Flu vaccinations for Years 7 to 11 take place on Tuesday. Consent forms were sent home.",
    "Uniform reminder: plain black shoes, no trainers. Thank you for your support.",
    "Our Duke of Edinburgh bronze group completed their expedition in the Peak District this "
    "weekend. Well done everyone!",
    "The PTA summer fair is on Saturday 20 June, 12 to 4pm. Volunteers are very welcome.",
    "Mock exams for Year 13 start on Monday. Good luck to all our sixth formers.",
    "World Book Day: come dressed as your favourite character on Thursday 5 March.",
    "Mrs Okafor, our Designated Safeguarding Lead, has written to all families about online "
    "safety. Please take a moment to read it.",
    "Thank you to Mr Reid and the science department for a brilliant STEM week.",
    "The Year 7 residential to Kingswood is confirmed for 15 to 17 June. Kit lists to follow.",
    "Reminder: the school car park is for staff only. Please use the drop-off zone on Mill Lane.",
    "A huge thank you to Northgate Engineering for hosting our apprentices' site visit.",
    "Results day for A levels is Thursday 13 August; GCSEs are the following Thursday.",
    "Our eco club planted 200 trees along the playing field boundary this week.",
    "Applications for the sixth form close on 31 January. The prospectus is on our website.",
    "Year 12 visited the Houses of Parliament today for their politics course.",
    "Well done to the chess club, who won the regional schools' tournament!",
    "School photographs will be taken on Monday 14 September. Order forms come home later.",
    "The drama department's production of Oliver! runs from Wednesday to Friday at 7pm.",
    "Please remember that mobile phones must be switched off and in bags during the school day.",
    "We are recruiting: a science technician and a learning support assistant. See the "
    "vacancies page.",
    "Bikeability training for Year 7 will run next week. Please make sure bikes are roadworthy.",
    "Anti-bullying week starts on Monday. This year's theme is 'Make a noise about bullying'.",
    "Our careers fair welcomed 30 local employers. Thank you to everyone who came along.",
    "The Year 9 options booklet is now online. Options evening is on 4 February.",
    "Happy Easter from everyone at Brookfield Academy! School reopens on Monday 13 April.",
    "Have a lovely half term, everyone. See you on Monday 1 June.",
    "Our apprentices at Castle Vets have been nominated for a regional training award.",
    "The new all-weather pitch is now open for after-school clubs.",
    "Follow us on X (formerly Twitter) and Instagram for the latest news from Brookfield.",
    "Maths challenge winners announced: the Year 10x team came top in the region.",
    "Will there be a bus back from the match? Yes: it leaves the ground at 5:15pm.",
    "The price of the ski trip has been held at last year's level thanks to the PTA.",
    "Bring a shoebox for the Xmas appeal: gifts for local families in need.",
    "A reminder that our safeguarding policy is available on the website.",
]
COMMENTS = [
    "Thanks for letting us know!", "What time does it finish?", "Brilliant, well done all 👏",
    "Is there parking on site?", "Lovely photos 😊", "Thank you to the staff, they work so hard",
    "Do we need to bring a packed lunch?", "Great news!", "Can Year 6 parents come to this?",
    "So proud of them all", "Where can I find the form?", "Fab day, thanks Brookfield",
    "Will it be cancelled if it rains?", "Congratulations to everyone involved",
    "Shared with our family group 👍", "Looking forward to it", "Is this the same as last year?",
    "Ours came home buzzing, thank you!", "Any news on the bus times?", "Amazing effort 👏👏",
]
ORG_REPLIES = [
    "Thank you! We will pass that on to the team.",
    "It finishes at 3:15pm. Thank you for asking.",
    "Yes, the form is on the Parents page of our website.",
    "Please contact the school office on the main number and they will help.",
    "Thank you for your kind words!",
]
LEARNER_COMMENTS = [
    "best day ever!!", "cant wait for this", "this was so good", "miss this already xx",
    "who else is going?", "hope it doesnt rain lol", "loved it", "finally!!",
]
STAFF_MESSAGES = [
    "Reminder: your coursework is due on Friday. Please upload it to Teams.",
    "Room change for period 3: we are in D12 today.",
    "Please bring your log book to Thursday's session.",
    "Your assessment is booked for next Tuesday at 10:00 in the workshop.",
    "Well done on your last assignment. Feedback is in the Teams assignment tab.",
    "Please complete the attendance form before the end of the week.",
    "The revision session is in the library at lunchtime tomorrow.",
    "Your placement visit with your employer is confirmed for Wednesday afternoon.",
    "Don't forget the permission slip for the trip.",
    "I've added the mark scheme to the class notebook.",
    "Question 2: work out 3 x 4, then 12 x 7, and show your working.",
    "For question 5, solve for x",
    "Year 10x are in the sports hall after lunch.",
    "Please read chapter 4 before Monday's lesson.",
    "The exam board deadline is 15 May, so please finish the draft by 1 May.",
]
LEARNER_MESSAGES = [
    "ok thanks", "will do, thank you", "sorry I was off yesterday, what did I miss?",
    "can I hand it in on Monday?", "thanks sir", "thank you miss", "is it in D12 again?",
    "I've uploaded it now",
]


class Builder:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.items: dict[str, list[dict[str, Any]]] = {a: [] for a in ACCOUNTS}
        self.expected: dict[str, dict[str, Any]] = {}
        self.counter = 1000

    # people --------------------------------------------------------------------------------
    def org(self, account: str) -> dict[str, Any]:
        acc = ACCOUNTS[account]
        return {"id": acc["id"], "handle": acc["handle"], "name": "Brookfield Academy"}

    def staff(self, sid: str, account: str) -> dict[str, Any]:
        name, email, teams_id = STAFF[sid]
        if account == "brookfield-teams":
            return {"id": teams_id, "name": name, "email": email}
        return {"name": name, "email": email}

    def learner(self, lid: str, account: str) -> dict[str, Any]:
        name, local, handle = LEARNERS[lid]
        email = f"{local}@students.brookfield.example.org"
        if account in ("brookfield-teams", "brookfield-email"):
            person: dict[str, Any] = {"name": name, "email": email}
            if account == "brookfield-teams":
                person["id"] = f"teams:aad-{lid.lower()}"
            return person
        platform = ACCOUNTS[account]["platform"]
        return {"id": f"{platform}-{lid.lower()}", "handle": handle, "name": name}

    def public(self, n: int | None = None, account: str = "brookfield-facebook"
               ) -> dict[str, Any]:
        name, handle = PUBLIC[self.rng.randrange(len(PUBLIC)) if n is None else n]
        platform = ACCOUNTS[account]["platform"]
        return {"id": f"{platform}-{handle.strip('@').replace('.', '-')}", "handle": handle,
                "name": name}

    # items ---------------------------------------------------------------------------------
    def add(self, account: str, kind: str, author: dict[str, Any], text: str, when: datetime,
            *, recipients: list[dict[str, Any]] | None = None, visibility: str | None = None,
            parent: dict[str, Any] | None = None, media: list[dict[str, Any]] | None = None,
            expect: list[str] | None = None, scenario: str = "ordinary",
            item_id: str | None = None, thread_id: str | None = None,
            edited_at: datetime | None = None) -> dict[str, Any]:
        acc = ACCOUNTS[account]
        self.counter += 1
        platform = acc["platform"]
        if item_id is None:
            prefix = {"facebook": f"{acc['id']}_", "instagram": "1790", "x": "18800",
                      "teams": "msg-", "email": "mail-"}[platform]
            item_id = f"{prefix}{self.counter}"
        if visibility is None:
            if platform in ("teams", "email") or kind not in ("post", "comment", "reply"):
                visibility = "private" if recipients and len(recipients) > 1 else "direct"
            else:
                visibility = "public"
        item: dict[str, Any] = {
            "id": item_id,
            "platform": platform,
            "account": account,
            "kind": kind,
            "author": author,
            "recipients": recipients or [],
            "created_at": when.isoformat(),
            "visibility": visibility,
            "text": text,
            "media": media or [],
            "parent_id": parent["id"] if parent else None,
            "thread_id": thread_id or (parent.get("thread_id") or parent["id"] if parent
                                       else None),
            "url": _url(platform, acc["id"], item_id),
        }
        if edited_at is not None:
            item["edited_at"] = edited_at.isoformat()
        expect = list(expect or [])
        if _one_to_one_staff_learner(kind, author, recipients or []):
            # no second member of staff or parent copied: P1's "method of accountability"
            expect.append("accountability")
        self.items[account].append(item)
        key = f"{platform}:{account}:{item_id}"
        self.expected[key] = {"scenario": scenario, "expect": sorted(set(expect or []))}
        return item

    # times ---------------------------------------------------------------------------------
    def school_day(self, start: date = date(2026, 1, 6), end: date = date(2026, 7, 17)) -> date:
        while True:
            day = start + timedelta(days=self.rng.randrange((end - start).days + 1))
            if day.weekday() < 5 and day not in BANK_HOLIDAYS and day not in CLOSURES and not any(
                a <= day <= b for a, b in HALF_TERMS
            ):
                return day

    def in_hours(self, day: date | None = None) -> datetime:
        day = day or self.school_day()
        minute = self.rng.randrange(9 * 60, 16 * 60 + 30)
        return at(day, minute // 60, minute % 60)

    def any_time(self) -> datetime:
        day = date(2026, 1, 5) + timedelta(days=self.rng.randrange(190))
        minute = self.rng.randrange(7 * 60, 22 * 60)
        return at(day, minute // 60, minute % 60)


def _one_to_one_staff_learner(kind: str, author: dict[str, Any],
                              recipients: list[dict[str, Any]]) -> bool:
    """A staff member's private message to learners only (work address: in the registers)."""
    if kind not in ("chat_message", "direct_message", "email", "reply") or not recipients:
        return False
    if not str(author.get("email", "")).endswith("@brookfield.example.org"):
        return False
    return all(str(p.get("email", "")).endswith("@students.brookfield.example.org")
               for p in recipients)


def at(day: date | str, hour: int, minute: int = 0) -> datetime:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


def _url(platform: str, account_id: str | None, item_id: str) -> str | None:
    if platform == "facebook":
        return f"https://www.facebook.com/{account_id}/posts/{item_id}"
    if platform == "instagram":
        return f"https://www.instagram.com/p/{item_id}/"
    if platform == "x":
        return f"https://x.com/BrookfieldAcad/status/{item_id}"
    return None


def photo(name: str, tagged: list[dict[str, Any]] | None = None, alt: str = "") -> dict[str, Any]:
    return {"url": f"https://media.example.org/brookfield/{name}.jpg", "mime_type": "image/jpeg",
            "alt_text": alt or None, "tagged": tagged or []}


# ------------------------------------------------------------------------------------------------
# the scenarios
# ------------------------------------------------------------------------------------------------

def ordinary_social(b: Builder) -> None:
    """Official posts with comments from families and learners, and the account's replies."""
    plan = [("brookfield-facebook", 30), ("brookfield-instagram", 22), ("brookfield-x", 24)]
    for account, count in plan:
        for n in range(count):
            text = ORG_POSTS[b.rng.randrange(len(ORG_POSTS))]
            when = b.in_hours()
            media = [photo(f"{account}-{n}", alt="Pupils on the playing field, faces not shown")
                     ] if account == "brookfield-instagram" or b.rng.random() < 0.3 else []
            post = b.add(account, "post", b.org(account), text, when, media=media)
            for c in range(b.rng.randrange(0, 4)):
                when = when + timedelta(minutes=b.rng.randrange(5, 600))
                if b.rng.random() < 0.25:
                    lid = f"L{b.rng.randrange(1, 31):03d}"
                    b.add(account, "comment", b.learner(lid, account),
                          LEARNER_COMMENTS[b.rng.randrange(len(LEARNER_COMMENTS))], when,
                          parent=post, scenario="ordinary_learner_comment")
                else:
                    comment = b.add(account, "comment", b.public(account=account),
                                    COMMENTS[b.rng.randrange(len(COMMENTS))], when, parent=post)
                    if c == 0 and b.rng.random() < 0.4:
                        b.add(account, "reply", b.org(account),
                              ORG_REPLIES[b.rng.randrange(len(ORG_REPLIES))],
                              when + timedelta(minutes=30), parent=comment,
                              thread_id=post["id"])


def ordinary_messages(b: Builder) -> None:
    """Tutors' reminders to learners in working hours, learners' answers at any time."""
    for _ in range(55):
        sid = TUTORS[b.rng.randrange(len(TUTORS))]
        lid = f"L{b.rng.randrange(1, 31):03d}"
        when = b.in_hours()
        # a second member of staff is always in the chat (the policy's accountability)
        msg = b.add("brookfield-teams", "chat_message", b.staff(sid, "brookfield-teams"),
                    STAFF_MESSAGES[b.rng.randrange(len(STAFF_MESSAGES))], when,
                    recipients=[b.learner(lid, "brookfield-teams"),
                                b.staff("S002", "brookfield-teams")])
        if b.rng.random() < 0.5:
            # learners answer when they answer: even at 23:00 that is not a staff breach
            late = b.rng.random() < 0.4
            reply_at = (at(when.date(), 22, b.rng.randrange(60)) if late
                        else when + timedelta(minutes=b.rng.randrange(2, 90)))
            b.add("brookfield-teams", "reply", b.learner(lid, "brookfield-teams"),
                  LEARNER_MESSAGES[b.rng.randrange(len(LEARNER_MESSAGES))], reply_at,
                  recipients=[b.staff(sid, "brookfield-teams"),
                              b.staff("S002", "brookfield-teams")], parent=msg,
                  scenario="learner_message_late" if late else "ordinary")
    # class group chats: a tutor, a second member of staff and several learners
    for _ in range(10):
        sid = TUTORS[b.rng.randrange(len(TUTORS))]
        learners = b.rng.sample(sorted(LEARNERS), 5)
        b.add("brookfield-teams", "chat_message", b.staff(sid, "brookfield-teams"),
              STAFF_MESSAGES[b.rng.randrange(len(STAFF_MESSAGES))], b.in_hours(),
              recipients=[b.staff("S004", "brookfield-teams")]
              + [b.learner(lid, "brookfield-teams") for lid in learners],
              visibility="private")
    # journalled email: tutors to learners with a parent or colleague copied, staff to staff
    for _ in range(22):
        sid = TUTORS[b.rng.randrange(len(TUTORS))]
        lid = f"L{b.rng.randrange(1, 31):03d}"
        b.add("brookfield-email", "email", b.staff(sid, "brookfield-email"),
              STAFF_MESSAGES[b.rng.randrange(len(STAFF_MESSAGES))] + "\n\nKind regards,\n"
              + STAFF[sid][0], b.in_hours(),
              recipients=[b.learner(lid, "brookfield-email"),
                          b.staff("S002", "brookfield-email")])
    for _ in range(8):
        b.add("brookfield-email", "email", b.staff("S004", "brookfield-email"),
              "Minutes from today's pastoral meeting are attached.", b.any_time(),
              recipients=[b.staff("S001", "brookfield-email"),
                          b.staff("S002", "brookfield-email")])


def learner_pii(b: Builder) -> None:
    fb, ig, x = "brookfield-facebook", "brookfield-instagram", "brookfield-x"
    when = at("2026-01-22", 12, 5)
    b.add(fb, "post", b.org(fb), "Huge congratulations to Jayden Price in Year 10, who has been "
          "selected for the county football squad! ⚽", when, expect=["learner_pii"],
          scenario="learner_full_name_in_official_post")
    post = b.add(fb, "post", b.org(fb), "What a performance at last night's spring concert. "
                 "Thank you to all our musicians and singers!", at("2026-03-19", 9, 30),
                 scenario="ordinary")
    b.add(fb, "comment", b.public(0), "So proud of Maisie O'Connell's solo, she was amazing!",
          at("2026-03-19", 10, 2), parent=post, expect=["learner_pii"],
          scenario="learner_name_possessive_in_comment")
    b.add(fb, "comment", b.public(3), "Freya MacLeod lives on Wood Lane, AB55 1SF if anyone "
          "has her jumper", at("2026-03-19", 11, 40), parent=post, expect=["learner_pii"],
          scenario="learner_name_and_postcode_in_comment")
    b.add(fb, "comment", b.public(5), "Anyone got Ruby Fletcher's number? I think it's "
          "07700 900482", at("2026-03-19", 13, 15), parent=post, expect=["learner_pii"],
          scenario="learner_phone_in_comment")
    b.add(fb, "comment", b.public(6), "Happy 18th birthday Kacper Zielinski!! born 9th January "
          "2008, where has the time gone", at("2026-01-09", 19, 0), parent=post,
          expect=["learner_pii"], scenario="learner_date_of_birth_in_comment")
    b.add(fb, "comment", b.public(2), "for tickets email oliver.smithhughes@students."
          "brookfield.example.org", at("2026-03-19", 14, 0), parent=post,
          expect=["learner_pii"], scenario="learner_email_in_comment")
    b.add(fb, "comment", b.public(8), "Jayden's DOB is 14/03/2010 if the office needs it for "
          "the form", at("2026-03-20", 8, 45), parent=post, expect=["learner_pii"],
          scenario="learner_date_of_birth_with_first_name")
    b.add(ig, "post", b.org(ig), "Art exhibition winners! Well done Olly Smith-Hughes and "
          "Amira Haddad 🎨 #BrookfieldArt", at("2026-02-05", 15, 10),
          media=[photo("art-exhibition", alt="Paintings on display boards")],
          expect=["learner_pii"], scenario="learner_preferred_name_in_official_post")
    b.add(ig, "post", b.org(ig), "County cross-country champion! #JaydenPrice #ProudToBeBrookfield",
          at("2026-02-12", 16, 0), media=[photo("cross-country")], expect=["learner_pii"],
          scenario="learner_hashtag")
    ig_post = b.add(ig, "post", b.org(ig), "Year 9 drama rehearsals are in full swing 🎭",
                    at("2026-03-03", 12, 0), media=[photo("drama")])
    b.add(ig, "comment", b.public(1, ig), "@maisie.fb you were brilliant in this!",
          at("2026-03-03", 18, 20), parent=ig_post, expect=["learner_pii"],
          scenario="learner_handle_in_comment")
    b.add(x, "post", b.org(x), "Congratulations to William Turner, our Young Engineer of the "
          "Year! Call the office on 01632 960 123 for tickets to the awards evening.",
          at("2026-04-28", 11, 0), expect=["learner_pii"], scenario="learner_full_name_x")
    tweet = b.add(x, "post", b.org(x), "Our apprentices are out on site with Northgate "
                  "Engineering this week.", at("2026-05-12", 9, 0))
    b.add(x, "reply", b.public(7, x), "thats Danilo Oliveira in the photo, he lives at "
          "14 Station Rd, SK11 1JH, tell him to text me on +44 7700 900123",
          at("2026-05-12", 20, 0),
          parent=tweet, expect=["learner_pii"], scenario="learner_address_phone_in_reply")
    b.add(x, "reply", b.public(9, x), "well done Hana Bláhová!! 🎉", at("2026-05-12", 20, 30),
          parent=tweet, expect=["learner_pii"], scenario="learner_name_with_diacritics")


def photos(b: Builder) -> None:
    ig, fb = "brookfield-instagram", "brookfield-facebook"
    b.add(ig, "post", b.org(ig), "Science week: making slime in the lab 🧪",
          at("2026-03-11", 14, 0),
          media=[photo("slime", tagged=[b.learner("L002", ig)], alt="Two pupils in goggles")],
          expect=["unapproved_photo", "learner_pii"], scenario="photo_of_learner_without_consent")
    b.add(fb, "post", b.org(fb), "Our Year 8 netball squad before the final",
          at("2026-03-13", 16, 30),
          media=[photo("netball", tagged=[b.learner("L004", fb)], alt="Netball team photo")],
          expect=["unapproved_photo", "learner_pii"], scenario="photo_of_learner_without_consent")
    # consent covers the photo, but a tag still names the learner in public
    b.add(ig, "post", b.org(ig), "Football training on the new pitch ⚽", at("2026-03-16", 15, 0),
          media=[photo("football", tagged=[b.learner("L001", ig)], alt="Pupil with a ball")],
          expect=["learner_pii"], scenario="photo_with_consent_tagged")
    b.add(ig, "post", b.org(ig), "Football training on the new pitch, part two ⚽",
          at("2026-03-17", 15, 0),
          media=[photo("football-2", alt="Pupils in a passing drill, from behind")],
          scenario="photo_with_consent_untagged")


def out_of_hours(b: Builder) -> None:
    t = "brookfield-teams"
    # single late messages: severity 2, digest
    b.add(t, "chat_message", b.staff("S007", t), "Can you bring your sketchbook tomorrow?",
          at("2026-02-03", 21, 10), recipients=[b.learner("L008", t)], expect=["out_of_hours"],
          scenario="out_of_hours_late_evening")
    b.add(t, "chat_message", b.staff("S009", t), "Reminder that your portfolio review is "
          "on Monday.", at("2026-02-07", 10, 0), recipients=[b.learner("L021", t)],
          expect=["out_of_hours"], scenario="out_of_hours_weekend")
    b.add(t, "chat_message", b.staff("S006", t), "Please come to D12 first thing.",
          at("2026-05-13", 6, 45), recipients=[b.learner("L014", t)], expect=["out_of_hours"],
          scenario="out_of_hours_early_morning_bst")
    # bank holidays (England)
    b.add("brookfield-email", "email", b.staff("S007", "brookfield-email"),
          "Reminder about Thursday's assessment. Kind regards, Miss Carrington",
          at("2026-04-06", 12, 0), recipients=[b.learner("L006", "brookfield-email")],
          expect=["out_of_hours"], scenario="out_of_hours_bank_holiday_easter_monday")
    b.add(t, "chat_message", b.staff("S009", t), "Your employer review form is due this week.",
          at("2026-05-04", 11, 30), recipients=[b.learner("L025", t)], expect=["out_of_hours"],
          scenario="out_of_hours_bank_holiday_may_day")
    # St Andrew's Day is not a bank holiday in England: an ordinary working day here
    b.add("brookfield-email", "email", b.staff("S006", "brookfield-email"),
          "The revision timetable is attached.", at("2026-11-30", 11, 0),
          recipients=[b.learner("L012", "brookfield-email")],
          scenario="st_andrews_day_is_a_working_day_in_england")
    # a learner's late question, and the tutor's reply
    q = b.add(t, "chat_message", b.learner("L004", t), "sir when is the essay due?",
              at("2026-03-18", 22, 10), recipients=[b.staff("S006", t)], item_id="msg-late-q",
              scenario="learner_message_late")
    b.add(t, "reply", b.staff("S006", t), "Friday, before 9am.", at("2026-03-18", 22, 25),
          parent=q, expect=["out_of_hours"], scenario="staff_reply_out_of_hours")
    b.add(t, "chat_message", b.learner("L001", t), "sorry miss I forgot my homework",
          at("2026-03-24", 23, 30), recipients=[b.staff("S007", t)],
          scenario="learner_message_late")
    # the repeated pattern: one tutor, one learner, four late messages in thirteen days
    pattern = [
        ("2026-03-03", 21, 40, "Did you get my notes on the essay?", []),
        ("2026-03-07", 20, 15, "How's the revision going? x", ["tone"]),
        ("2026-03-12", 22, 50, "You're my favourite in that class, don't tell the others",
         ["tone"]),
        ("2026-03-15", 23, 10, "Still up? Message me back", []),
    ]
    for day, hour, minute, text, extra in pattern:
        b.add(t, "direct_message", b.staff("S006", t), text, at(day, hour, minute),
              recipients=[b.learner("L002", t)], expect=["out_of_hours", *extra],
              scenario="out_of_hours_repeated_same_learner", thread_id="chat-s006-l002")


def tone(b: Builder) -> None:
    t, e = "brookfield-teams", "brookfield-email"
    cases = [
        ("S007", "L006", "See you tomorrow xx", "2026-01-14"),
        ("S009", "L024", "Thanks hun, got it", "2026-01-20"),
        ("S006", "L003", "Great work on the poster today x", "2026-02-02"),
        ("S007", "L012", "Miss you in class! Hope you're feeling better", "2026-02-10"),
        ("S009", "L020", "Well done on your results 😘", "2026-06-11"),
        ("S006", "L016", "This can be our little secret, ok?", "2026-06-17"),
    ]
    for sid, lid, text, day in cases:
        b.add(t, "chat_message", b.staff(sid, t), text, at(day, 15, 20),
              recipients=[b.learner(lid, t)], expect=["tone"], scenario="tone_staff_to_learner")
    b.add(e, "email", b.staff("S007", e), "Thanks for helping tidy the art room x\nMiss "
          "Carrington", at("2026-02-26", 15, 45), recipients=[b.learner("L006", e)],
          expect=["tone"], scenario="tone_staff_to_learner")
    fb = "brookfield-facebook"
    post = b.add(fb, "post", b.org(fb), "Happy half term everyone, see you on the 23rd! xx",
                 at("2026-02-13", 15, 30), expect=["tone"], scenario="tone_official_post")
    c = b.add(fb, "comment", b.learner("L011", fb), "best school ever!!", at("2026-02-13", 16, 0),
              parent=post, scenario="ordinary_learner_comment")
    b.add(fb, "reply", b.staff("S004", fb) | {"id": "fb:5501"}, "Aww thank you xxx",
          at("2026-02-13", 16, 20), parent=c, thread_id=post["id"],
          expect=["tone"], scenario="tone_staff_reply_to_learner_comment")
    # look-alikes that are not kisses or pet names
    b.add(t, "chat_message", b.learner("L006", t), "thank you miss xx", at("2026-01-14", 15, 40),
          recipients=[b.staff("S007", t)], scenario="learner_writes_kisses")
    b.add(t, "chat_message", b.staff("S006", t), "Thanks for covering my lesson xx",
          at("2026-01-15", 12, 0), recipients=[b.staff("S007", t)],
          scenario="staff_to_staff_kisses")


def safeguarding_and_toxicity(b: Builder) -> None:
    fb, ig, x = "brookfield-facebook", "brookfield-instagram", "brookfield-x"
    post = b.add(ig, "post", b.org(ig), "Mental health awareness week: you are never alone. "
                 "Talk to any member of staff. 💚", at("2026-05-11", 9, 0),
                 media=[photo("mh-week", alt="A green ribbon")])
    b.add(ig, "comment", b.learner("L010", ig), "i cant do this anymore. ive been cutting again "
          "and nobody even notices", at("2026-05-11", 23, 40), parent=post,
          expect=["safeguarding"], scenario="safeguarding_self_harm")
    b.add(ig, "comment", {"id": "instagram-chris-m-1987", "handle": "@chris_m_1987",
                          "name": "Chris"},
          "@zara.ahmed12 hey cutie ur really pretty, how old r u? message me on snap, "
          "dont tell ur parents", at("2026-05-12", 0, 15), parent=post,
          expect=["safeguarding", "learner_pii"], scenario="safeguarding_grooming")
    fbpost = b.add(fb, "post", b.org(fb), "Our pastoral team are here for every pupil. "
                   "Drop in to Student Services any lunchtime.", at("2026-05-13", 10, 0))
    b.add(fb, "comment", b.learner("L017", fb), "my stepdad hits me when mum is at work and i "
          "dont want to go home", at("2026-05-13", 21, 0), parent=fbpost,
          expect=["safeguarding"], scenario="safeguarding_disclosure")
    b.add(fb, "comment", b.public(10), "This school is a joke, the teachers are useless idiots",
          at("2026-05-13", 22, 0), parent=fbpost, expect=["toxicity"], scenario="toxic_comment")
    b.add(fb, "comment", b.public(11), "Ruby Fletcher is a fat ugly loser and everyone hates "
          "her", at("2026-05-14", 7, 30), parent=fbpost, expect=["toxicity", "learner_pii"],
          scenario="toxic_comment_about_learner")
    tweet = b.add(x, "post", b.org(x), "Good luck to our Year 11s on their first GCSE exam "
                  "today!", at("2026-05-14", 8, 0))
    b.add(x, "reply", {"id": "x-anon-44", "handle": "@anon_44_", "name": "anon"},
          "@ethan_nw im going to smash your face in after school, watch", at("2026-05-14", 9, 0),
          parent=tweet, expect=["toxicity", "learner_pii"], scenario="toxic_threat")
    # scams and impersonation
    b.add(fb, "comment", {"id": "fb-brookfield-official", "handle": "BrookfieldAcademy.Official",
                          "name": "Brookfield Academy Official"},
          "Congratulations! Brookfield Academy is giving away 50 free iPads to families. Claim "
          "yours at bit.ly/brk-free-ipad with your bank details before midnight!",
          at("2026-05-15", 19, 0), parent=fbpost, expect=["commerce"], scenario="scam")
    b.add(x, "reply", {"id": "x-tipster", "handle": "@tipsking99", "name": "Tips King"},
          "100% guaranteed betting wins, DM me for my VIP tips 💰💰", at("2026-05-14", 12, 0),
          parent=tweet, expect=["commerce"], scenario="scam")


def personal_accounts(b: Builder) -> None:
    ig, e = "brookfield-instagram", "brookfield-email"
    post = b.add(ig, "post", b.org(ig), "Cross-country club results are in! 🏃",
                 at("2026-04-20", 16, 0), media=[photo("xc-club")])
    c = b.add(ig, "comment", b.learner("L006", ig), "that was so hard lol",
              at("2026-04-20", 17, 0), parent=post, scenario="ordinary_learner_comment")
    b.add(ig, "reply", {"id": "instagram-sophiec-runs", "handle": "@sophiec.runs",
                        "name": "Sophie C"},
          "@rubyfletch you smashed it! message me on here later 😊", at("2026-04-20", 17, 30),
          parent=c, thread_id=post["id"], expect=["personal_account_contact", "learner_pii"],
          scenario="staff_personal_account_contact")
    b.add(ig, "direct_message", {"id": "instagram-dan-mensah-88", "handle": "@dan_mensah_88",
                                 "name": "Dan"},
          "Hi, it's Mr Mensah, this is my own account. Easier to chat on here",
          at("2026-04-21", 21, 30), recipients=[b.learner("L002", ig)],
          expect=["personal_account_contact", "out_of_hours"],
          scenario="staff_personal_account_contact")
    b.add(e, "email", {"name": "Dan Mensah", "email": "danmensah88@gmail.example.com"},
          "Hi Olly, it's Mr Mensah from my own email, easier to reach me here over the holidays.",
          at("2026-04-08", 19, 45), recipients=[b.learner("L003", e)],
          expect=["personal_account_contact", "out_of_hours"],
          scenario="staff_personal_account_contact")


def one_to_one_thread(b: Builder) -> None:
    """A tutor and one learner, no one else copied, drifting from work to personal topics."""
    t = "brookfield-teams"
    tutor, lexi = b.staff("S009", t), b.learner("L020", t)
    lines = [
        (tutor, "Hi Lexi, your unit 3 draft is marked, have a look at the comments.", 0),
        (lexi, "thanks miss, ill fix it tonight", 4),
        (tutor, "Great. How are things going at home at the moment?", 20),
        (lexi, "not great tbh, mum and dad keep arguing", 25),
        (tutor, "You can always talk to me about anything. What are you up to this weekend?", 31),
        (lexi, "nothing much, probably just staying in", 40),
        (tutor, "Let me know if you want to chat, I'm always around", 45),
        (lexi, "ok thanks miss", 50),
    ]
    start = at("2026-06-09", 13, 0)
    parent = None
    for author, text, minutes in lines:
        to = lexi if author is tutor else tutor
        parent = b.add(t, "chat_message", author, text, start + timedelta(minutes=minutes),
                       recipients=[to], parent=parent, thread_id="chat-s009-l020",
                       visibility="direct", scenario="one_to_one_thread",
                       expect=["conversation_drift"] if author is tutor else [])


def meeting(b: Builder) -> None:
    t = "brookfield-teams"
    b.add(t, "meeting", b.staff("S006", t), "Catch-up call about your coursework",
          at("2026-06-16", 14, 0), recipients=[b.learner("L016", t)],
          scenario="video_session_one_staff_no_passcode", expect=["video_session"],
          item_id="meeting-s006-l016")
    b.items[t][-1]["meeting"] = {"passcode_required": False, "lobby_enabled": False,
                                 "participants": ["S006", "L016"]}


def edited(b: Builder) -> None:
    """The same post twice: first as posted, then as edited (same id, later text)."""
    fb = "brookfield-facebook"
    first = at("2026-06-22", 10, 0)
    b.add(fb, "post", b.org(fb), "Congratulations to our Year 11 debating team, who won the "
          "regional final!", first, item_id="104000000001_edit1", scenario="edited_item")
    b.add(fb, "post", b.org(fb), "Congratulations to our Year 11 debating team, who won the "
          "regional final! Special mention to Amira Haddad, best speaker of the day.",
          first, item_id="104000000001_edit1", edited_at=first + timedelta(hours=2),
          expect=["learner_pii"], scenario="edited_item")


MALFORMED = [
    '{"id": "fb-ok-1", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",'
    ' "author": {"id": "104000000001", "handle": "BrookfieldAcademy"}, "created_at": '
    '"2026-07-01T09:00:00+01:00", "visibility": "public", "text": "This line is fine."}',
    '{"id": "fb-bad-1", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",'
    ' "text": "This line is cut off',
    '{"id": "fb-bad-2", "platform": "facebook", "account": "brookfield-facebook", "kind": '
    '"status_update", "created_at": "yesterday", "text": "Unknown kind and no real time."}',
    '{"id": "fb-ok-2", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",'
    ' "author": {"id": "104000000001", "handle": "BrookfieldAcademy"}, "created_at": '
    '"2026-07-01T09:30:00+01:00", "visibility": "public", "text": "So is this one."}',
]


REGISTER_COLUMNS = {
    "learners": ["learner_id", "first_name", "last_name", "preferred_name", "date_of_birth",
                 "email", "photo_consent", "comms_consent", "employer", "handles",
                 "guardian_contacts", "year_group", "programme", "tutor"],
    "staff": ["staff_id", "name", "email", "slack_user_id", "role", "personal_handles",
              "platform_ids", "active"],
    "accounts": ["account_id", "platform", "handle", "platform_id", "managers"],
}


def write_register_csvs(out: Path) -> None:
    """The people of registers.toml as the three CSV files `registers import` reads."""
    with (HERE / "registers.toml").open("rb") as fh:
        registers = tomllib.load(fh)
    out.mkdir(parents=True, exist_ok=True)
    for kind, columns in REGISTER_COLUMNS.items():
        with (out / f"{kind}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            for row in registers.get(kind, []):
                cells = []
                for column in columns:
                    value = row.get(column, "")
                    if isinstance(value, list):
                        value = ";".join(value)
                    elif isinstance(value, bool):
                        value = ("yes" if value else "no") if "consent" in column else (
                            "true" if value else "false")
                    cells.append(str(value))
                writer.writerow(cells)


def _accountability_once_a_week(b: Builder) -> None:
    """The accountability rule reports a one-to-one conversation once per week (Monday to
    Sunday, London time): only the first such message of each conversation each week keeps
    the label."""
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    seen: set[tuple[str, str, date]] = set()
    every = [(account, item) for account, items in b.items.items() for item in items]
    for account, item in sorted(every, key=lambda ai: ai[1]["created_at"]):
        key = f"{ACCOUNTS[account]['platform']}:{account}:{item['id']}"
        entry = b.expected.get(key)
        if entry is None or "accountability" not in entry["expect"]:
            continue
        local = datetime.fromisoformat(item["created_at"]).astimezone(london).date()
        week = (account, item.get("thread_id") or item["parent_id"] or item["id"],
                local - timedelta(days=local.weekday()))
        if week in seen:
            entry["expect"] = [e for e in entry["expect"] if e != "accountability"]
        seen.add(week)


def main(out: Path = OUT, csv_out: Path = HERE / "registers-csv",
         expected_out: Path = HERE / "expected-findings.json") -> None:
    b = Builder(random.Random(SEED))
    for scenario in (ordinary_social, ordinary_messages, learner_pii, photos, out_of_hours, tone,
                     safeguarding_and_toxicity, personal_accounts, one_to_one_thread, meeting,
                     edited):
        scenario(b)
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for account, items in b.items.items():
        items.sort(key=lambda i: (i.get("edited_at") or i["created_at"], i["id"]))
        with (out / f"{account}.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        total += len(items)
    (out / "zz-malformed.jsonl").write_text("\n".join(MALFORMED) + "\n", encoding="utf-8")
    _accountability_once_a_week(b)
    b.expected["facebook:brookfield-facebook:fb-ok-1"] = {"scenario": "ordinary", "expect": []}
    b.expected["facebook:brookfield-facebook:fb-ok-2"] = {"scenario": "ordinary", "expect": []}
    expected_out.write_text(
        json.dumps(dict(sorted(b.expected.items())), indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8")
    write_register_csvs(csv_out)
    print(f"wrote {total} items to {out} (+ {len(MALFORMED)} lines in zz-malformed.jsonl), "
          f"{expected_out.name} and the register CSVs in {csv_out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the .jsonl files")
    parser.add_argument("--csv-out", type=Path, default=HERE / "registers-csv")
    parser.add_argument("--expected-out", type=Path, default=HERE / "expected-findings.json")
    args = parser.parse_args()
    main(args.out, args.csv_out, args.expected_out)
