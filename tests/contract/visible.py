"""What a reader sees, per connector: records written for the contract suite in each platform's
documented shape (and HTML structures a platform's body may hold: lists, blockquotes, nested
quotes, ``<pre>``), parsed by the connector's own parser, with the phrases that must reach the
item's text (tests/contract/test_contract.py, ``visible_text``).

A new connector adds an entry to ``VISIBLE``; the suite fails for a built-in without one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from governance_bot.items import Item

__all__ = ["HTML_PHRASES", "HTML_STRUCTURES", "VISIBLE", "Shown"]

# a body as platforms send it: paragraphs, a list, a blockquote holding another, preformatted
# text, a line break and an image with its alt text
HTML_STRUCTURES = (
    "<p>Well done to everyone at sports day</p>"
    "<ul><li>Jayden Price won the 800m</li><li>call 07700 900123 for photos</li></ul>"
    "<blockquote><p>a quoted line</p><blockquote><p>a quote inside the quote</p>"
    "</blockquote></blockquote>"
    "<pre>  kit list:\n    trainers</pre>"
    "<p>see you<br>on Friday <img src='x.png' alt='the team photo'></p>"
)
HTML_PHRASES = ("Well done to everyone at sports day", "- Jayden Price won the 800m",
                "- call 07700 900123 for photos", "a quoted line", "a quote inside the quote",
                "kit list:\n    trainers", "see you\non Friday the team photo")


@dataclass(frozen=True, slots=True)
class Shown:
    """An item parsed from a record, and the phrases (in reading order within each part) that a
    reader of the platform sees in that record."""

    item: Item | None
    phrases: tuple[str, ...]
    sources: tuple[str, ...] = ()  # parts the item must label (besides the body)


def _mastodon() -> list[Shown]:
    from connectors.mastodon import status_item

    status = {
        "id": "901", "created_at": "2026-11-18T10:00:00Z", "in_reply_to_id": None,
        "visibility": "public", "spoiler_text": "sports day results", "sensitive": True,
        "language": "en", "content": HTML_STRUCTURES, "url": "https://social.example/@s/901",
        "account": {"id": "1", "acct": "school"}, "mentions": [],
        "media_attachments": [{"id": "5", "type": "image", "url": "https://social.example/a.jpg",
                               "description": "Ruby holding the cup"}],
        "poll": {"id": "3", "options": [{"title": "Tom Ashworth"}, {"title": "Priya W"}]},
        "quote": {"state": "accepted", "quoted_status": {
            "id": "800", "content": "<p>quoted words from Oliver</p>", "spoiler_text": "",
            "account": {"id": "2", "acct": "parent"}}},
        "card": {"url": "https://news.example/a", "title": "Local paper: our winners",
                 "description": "Maisie Okafor took gold"},
    }
    return [Shown(status_item(status, "contract-account"),
                  (*HTML_PHRASES, "sports day results", "Tom Ashworth\nPriya W",
                   "@parent:\nquoted words from Oliver", "Local paper: our winners",
                   "Maisie Okafor took gold", "Ruby holding the cup"),
                  ("content warning", "poll options", "quoted post", "link card", "alt text"))]


def _bluesky() -> list[Shown]:
    from connectors.bluesky import post_item

    did = "did:plc:contract"
    post = {
        "uri": f"at://{did}/app.bsky.feed.post/3k1", "author": {"did": did, "handle": "s.bsky"},
        "record": {"$type": "app.bsky.feed.post", "createdAt": "2026-11-18T10:00:00Z",
                   "text": "Our winners", "embed": {
                       "$type": "app.bsky.embed.recordWithMedia",
                       "media": {"$type": "app.bsky.embed.images", "images": [
                           {"alt": "Ruby holding the cup", "image": {"ref": {"$link": "c1"},
                                                                    "mimeType": "image/jpeg"}}]},
                       "record": {"record": {"uri": f"at://{did}/app.bsky.feed.post/3k0"}}}},
        "embed": {"$type": "app.bsky.embed.recordWithMedia#view", "record": {"record": {
            "uri": f"at://{did}/app.bsky.feed.post/3k0", "author": {"handle": "parent.bsky"},
            "value": {"text": "quoted words from Oliver"}}}},
    }
    link = {
        "uri": f"at://{did}/app.bsky.feed.post/3k2", "author": {"did": did, "handle": "s.bsky"},
        "record": {"$type": "app.bsky.feed.post", "createdAt": "2026-11-18T10:00:00",
                   "text": "", "embed": {"$type": "app.bsky.embed.external", "external": {
                       "uri": "https://news.example/a", "title": "Local paper: our winners",
                       "description": "Maisie Okafor took gold"}}},
    }
    return [Shown(post_item(post, "contract-account"),
                  ("Our winners", "@parent.bsky:\nquoted words from Oliver",
                   "Ruby holding the cup"), ("quoted post", "alt text")),
            Shown(post_item(link, "contract-account"),
                  ("Local paper: our winners\nMaisie Okafor took gold",), ("link card",))]


def _x() -> list[Shown]:
    from connectors.x import Includes, parse_tweet

    includes = Includes({
        "users": [{"id": "2", "username": "parent"}],
        "tweets": [{"id": "800", "text": "quoted words from Oliver", "author_id": "2"}],
        "polls": [{"id": "3", "options": [{"position": 1, "label": "Tom Ashworth"},
                                          {"position": 2, "label": "Priya W"}]}],
        "media": [{"media_key": "m1", "type": "photo", "url": "https://pbs.example/a.jpg",
                   "alt_text": "Ruby holding the cup"}],
    })
    tweet = {"id": "1790000000000000001", "text": "Our winners", "author_id": "1",
             "conversation_id": "1790000000000000000", "created_at": "2026-11-18T10:00:00Z",
             "referenced_tweets": [{"type": "quoted", "id": "800"}],
             "attachments": {"poll_ids": ["3"], "media_keys": ["m1"]},
             "entities": {"urls": [{"url": "https://t.co/x", "expanded_url": "https://news.ex/a",
                                    "title": "Local paper: our winners",
                                    "description": "Maisie Okafor took gold"}]}}
    return [Shown(parse_tweet(tweet, "contract-account", includes),
                  ("Our winners", "@parent:\nquoted words from Oliver", "Tom Ashworth\nPriya W",
                   "Local paper: our winners\nMaisie Okafor took gold", "Ruby holding the cup"),
                  ("quoted post", "poll options", "link card", "alt text"))]


def _facebook() -> list[Shown]:
    from connectors.facebook import parse_comment, parse_post

    post = {"id": "104_1", "created_time": "2026-11-18T10:00:00+0000", "message": "Our winners",
            "attachments": {"data": [{"type": "share", "url": "https://news.example/a",
                                      "title": "Local paper: our winners",
                                      "description": "Maisie Okafor took gold"}]}}
    comment = {"id": "104_1_9", "created_time": "2026-11-18T10:05:00+0000", "message": "",
               "attachment": {"type": "photo", "description": "Ruby holding the cup",
                              "media": {"image": {"src": "https://fb.example/a.jpg"}}}}
    return [Shown(parse_post(post, "contract-account"),
                  ("Our winners", "Local paper: our winners\nMaisie Okafor took gold"),
                  ("link card",)),
            Shown(parse_comment(comment, "contract-account", "104_1"),
                  ("Ruby holding the cup",), ("caption",))]


def _instagram() -> list[Shown]:
    from connectors.instagram import parse_comment, parse_media

    media = {"id": "17900", "timestamp": "2026-11-18T10:00:00+0000", "media_type": "IMAGE",
             "caption": "Well done Jayden Price\ncall 07700 900123"}
    comment = {"id": "17901", "timestamp": "2026-11-18T10:05:00+0000", "text": "so proud Ruby"}
    return [Shown(parse_media(media, "contract-account"),
                  ("Well done Jayden Price\ncall 07700 900123",)),
            Shown(parse_comment(comment, "contract-account", "17900"), ("so proud Ruby",))]


def _youtube() -> list[Shown]:
    from connectors.youtube import comment_item, video_item

    comment = {"id": "Ug1", "snippet": {"videoId": "v1", "textDisplay": HTML_STRUCTURES,
                                        "publishedAt": "2026-11-18T10:00:00Z",
                                        "authorDisplayName": "@parent"}}
    video = {"id": "pi1", "snippet": {"title": "Sports day 2026", "publishedAt":
                                      "2026-11-18T09:00:00Z", "channelId": "UC1",
                                      "description": "Jayden Price wins the 800m",
                                      "resourceId": {"videoId": "v1"}}}
    return [Shown(comment_item(comment, "contract-account", video_id="v1", thread_id=None),
                  HTML_PHRASES),
            Shown(video_item(video, "contract-account"),
                  ("Sports day 2026", "Jayden Price wins the 800m"), ("description",))]


def _tiktok() -> list[Shown]:
    from connectors.tiktok import comment_item, video_item

    video = {"item_id": "73", "create_time": 1795000000, "caption": "Jayden Price wins"}
    comment = {"comment_id": "74", "create_time": 1795000100, "text": "so proud Ruby"}
    return [Shown(video_item(video, "contract-account", "b1"), ("Jayden Price wins",)),
            Shown(comment_item(comment, "contract-account", "73"), ("so proud Ruby",))]


def _teams() -> list[Shown]:
    from connectors.teams import parse_chat_message

    card = {"type": "AdaptiveCard", "body": [
        {"type": "TextBlock", "text": "Trip consent"},
        {"type": "FactSet", "facts": [{"title": "Learner", "value": "Maisie Okafor"}]}]}
    message = {
        "id": "1700", "messageType": "message", "createdDateTime": "2026-11-18T10:00:00Z",
        "chatId": "19:chat", "subject": "Friday fixtures",
        "from": {"user": {"id": "aad-1", "displayName": "D Mensah"}},
        "body": {"contentType": "html", "content": HTML_STRUCTURES},
        "attachments": [
            {"id": "a1", "contentType": "application/vnd.microsoft.card.adaptive",
             "content": json.dumps(card)},
            {"id": "1690", "contentType": "messageReference", "content": json.dumps({
                "messageId": "1690", "messagePreview": "quoted words from Oliver",
                "messageSender": {"user": {"displayName": "O Brennan"}}})},
            {"id": "f1", "contentType": "reference", "name": "Ruby_results.xlsx",
             "contentUrl": "https://files.example/Ruby_results.xlsx"}],
    }
    return [Shown(parse_chat_message(message, account="contract-account"),
                  (*HTML_PHRASES, "Friday fixtures", "Trip consent\nLearner\nMaisie Okafor",
                   "O Brennan:\nquoted words from Oliver", "Ruby_results.xlsx"),
                  ("subject", "card", "quoted post", "attachment"))]


def _slack_workspace() -> list[Shown]:
    from connectors.slack_workspace import SlackWorkspaceConnector, SlackWorkspaceSettings

    connector = SlackWorkspaceConnector(SlackWorkspaceSettings(
        name="contract", type="slack_workspace", account="contract-account",
        token="xoxb-contract"))  # type: ignore[arg-type]
    message = {"ts": "1795000000.000100", "bot_id": "B1", "username": "results-bot",
               "text": "Sports day results",
               "attachments": [{"title": "Winners", "text": "Jayden Price, 800m",
                                "fields": [{"title": "Phone", "value": "07700 900123"}]}],
               "files": [{"name": "Ruby_results.pdf", "title": "Ruby's results",
                          "url_private": "https://files.slack.example/r.pdf"}]}
    blocks = {"ts": "1795000001.000100", "bot_id": "B1", "text": "",
              "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                       "text": "Maisie Okafor is in goal"}}]}
    channel = {"id": "C1"}
    return [Shown(connector.message_item(message, channel),
                  ("Sports day results", "Winners\nJayden Price, 800m\nPhone\n07700 900123",
                   "Ruby's results\nRuby_results.pdf"), ("card", "attachment")),
            Shown(connector.message_item(blocks, channel), ("Maisie Okafor is in goal",),
                  ("card",))]


def _imap() -> list[Shown]:
    from connectors.imap import parse_message

    msg = EmailMessage()
    msg["From"] = "d.mensah@school.example.org"
    msg["To"] = "learner@school.example.org"
    msg["Subject"] = "Friday"
    msg["Date"] = "Tue, 17 Nov 2026 18:05:00 +0000"
    msg["Message-ID"] = "<contract-1@school.example.org>"
    msg.set_content("See you Friday")
    msg.add_alternative(f"<html><body>{HTML_STRUCTURES}</body></html>", subtype="html")
    msg.add_attachment("Learner: Maisie Okafor\nPhone: 07700 900456\n", subtype="plain",
                       filename="contacts.txt")
    return [Shown(parse_message(msg.as_bytes(), platform="email", account="contract-account"),
                  ("Friday", "See you Friday", *HTML_PHRASES,
                   "Learner: Maisie Okafor\nPhone: 07700 900456"),
                  ("email html", "attachment"))]


def _whatsapp() -> list[Shown]:
    from connectors.whatsapp import parse_webhook

    def message(n: int, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"from": "447700900111", "id": f"wamid.{n}", "timestamp": "1795000000",
                "type": kind, kind: body, **extra}

    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "metadata": {"phone_number_id": "109", "display_phone_number": "447700900000"},
            "messages": [
                message(1, "image", {"id": "m1", "mime_type": "image/jpeg",
                                     "caption": "Jayden Price at sports day"}),
                message(2, "interactive", {"type": "list_reply", "list_reply": {
                    "id": "r1", "title": "Pick up Ruby", "description": "at 4pm"}}),
                message(3, "contacts", {}, contacts=[{"name": {"formatted_name": "Maisie O"},
                                                     "phones": [{"phone": "07700 900123"}]}]),
            ]}}]}]}
    items, _ = parse_webhook(payload, account="contract-account")
    by_id = {i.id: i for i in items}
    return [Shown(by_id.get("wamid.1"), ("Jayden Price at sports day",)),
            Shown(by_id.get("wamid.2"), ("Pick up Ruby at 4pm",)),
            Shown(by_id.get("wamid.3"), ("Maisie O 07700 900123",))]


def _website() -> list[Shown]:
    from connectors.website import WebsiteConnector, WebsiteSettings

    site = WebsiteConnector(WebsiteSettings(name="contract", type="website",
                                            account="contract-account",
                                            start_url="https://www.school.example.org/"))
    page = (f"<html><head><title>News</title><script>track()</script></head><body><h1>News"
            f"</h1>{HTML_STRUCTURES}</body></html>")
    return [Shown(site._page_item("https://www.school.example.org/news", page, None),
                  ("News", *HTML_PHRASES))]


def _zoom() -> list[Shown]:
    from connectors.zoom import meeting_item

    report = {"uuid": "u1==", "id": 81234567890, "topic": "Year 11 revision: Maisie Okafor",
              "start_time": "2026-11-18T16:00:00Z", "host_id": "h1"}
    return [Shown(meeting_item(report, None, [], account="contract-account"),
                  ("Year 11 revision: Maisie Okafor",))]


def _jsonl() -> list[Shown]:
    from connectors.jsonl import parse_line

    line = json.dumps({
        "id": "j1", "platform": "mastodon", "account": "contract-account", "kind": "post",
        "created_at": "2026-11-18T10:00:00+00:00",
        "text": "Who should captain?\n\n[poll options]\nJayden Price",
        "parts": [{"source": "poll options", "start": 36, "end": 48}]})
    item = parse_line(line, Path("contract.jsonl"), 1)
    return [Shown(item if isinstance(item, Item) else None, ("Who should captain?",
                                                             "Jayden Price"), ("poll options",))]


VISIBLE: dict[str, Callable[[], list[Shown]]] = {
    "mastodon": _mastodon, "bluesky": _bluesky, "x": _x, "facebook": _facebook,
    "instagram": _instagram, "youtube": _youtube, "tiktok": _tiktok, "teams": _teams,
    "slack_workspace": _slack_workspace, "imap": _imap, "whatsapp": _whatsapp,
    "website": _website, "zoom": _zoom, "jsonl": _jsonl,
}
