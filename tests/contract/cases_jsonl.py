"""Contract case for the ``jsonl`` input (normalised items from a file or a folder of files).

How the contract reads for local files: a "page" is one file, "pages" a folder of several files
(in sub-folders too), the refused-credentials check becomes a path the service cannot read (the
file was moved away), and a malformed record is a line that is not JSON. The items are invented
comments on the example organisation's accounts.
"""

from __future__ import annotations

import json

from tests.contract.harness import FileCase, Scenario

ACCOUNT = "brookfield-facebook"
LOCAL = ("a local file has no remote service that could be busy, fail or ask for a wait")


def _line(n: int) -> tuple[str, str]:
    item_id = f"contract-jsonl-{n}"
    return json.dumps({
        "id": item_id, "platform": "facebook", "account": ACCOUNT, "kind": "comment",
        "author": {"id": f"61000000{n:05d}", "name": "A. Parent"},
        "created_at": f"2026-02-03T10:{n:02d}:00Z",
        "text": f"Lovely photos from the sports day, thank you ({n})",
    }), item_id


def files(scenario: Scenario) -> tuple[dict[str, list[str]], set[str], str]:
    if scenario == "pages":
        layout = {"2026-01.jsonl": (1, 2), "2026-02.jsonl": (3, 4, 5),
                  "older/2025-12.jsonl": (6,)}
        out = {name: [_line(n)[0] for n in numbers] for name, numbers in layout.items()}
        ids = {_line(n)[1] for numbers in layout.values() for n in numbers}
        return out, ids, ""
    if scenario == "malformed":
        (one, first), (two, second) = _line(1), _line(2)
        return {"feed.jsonl": [one, '{"id": "half-a-line", "text": "cut off', two]}, \
            {first, second}, "feed.jsonl:2"
    lines = [_line(n) for n in (1, 2, 3)]
    return {"feed.jsonl": [text for text, _ in lines]}, {i for _, i in lines}, ""


CASES = [
    FileCase(
        id="jsonl",
        type="jsonl",
        settings=lambda where: {"type": "jsonl", "path": where},
        env={},
        secrets=(),
        required=("path",),
        invalid={"poll_interval_seconds": 1, "removals_path": 5},
        account=ACCOUNT,
        files=files,
        not_applicable={
            "rate_limited": LOCAL,
            "server_error": LOCAL,
            "secrets_in_logs": "the jsonl input takes no secrets (no token, no password)",
        },
    ),
]
