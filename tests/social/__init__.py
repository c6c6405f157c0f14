"""Tests of the YouTube, Mastodon, Bluesky and TikTok connectors (recorded responses, respx)."""
