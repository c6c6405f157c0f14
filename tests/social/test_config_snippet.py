"""The documented configuration snippet for these connectors loads as written (once uncommented)
and its secrets stay masked."""

from __future__ import annotations

from pathlib import Path

from governance_bot.config import connector_settings, load_config

SNIPPET = Path(__file__).resolve().parents[2] / "docs" / "config-snippets" / "social-b.toml"


def test_the_documented_snippet_is_a_valid_configuration(tmp_path: Path):
    lines = []
    for line in SNIPPET.read_text().splitlines():
        if line.startswith("# ---") or line.startswith("# # "):
            continue  # headings and alternatives
        lines.append(line[2:] if line.startswith("# ") else line)
    (tmp_path / "config.toml").write_text("\n".join(lines) + "\n")
    env = {k: f"secret-{k}" for k in ("YOUTUBE_REFRESH_TOKEN", "YOUTUBE_CLIENT_SECRET",
                                      "MASTODON_ACCESS_TOKEN", "BLUESKY_APP_PASSWORD",
                                      "TIKTOK_REFRESH_TOKEN", "TIKTOK_CLIENT_SECRET")}
    settings = connector_settings(load_config(tmp_path / "config.toml", env=env))
    assert [s.type for s in settings] == ["youtube", "mastodon", "bluesky", "tiktok"]
    shown = " ".join(str(s.masked()) + repr(s) for s in settings)
    assert not any(secret in shown for secret in env.values())
