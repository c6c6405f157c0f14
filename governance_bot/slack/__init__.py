"""The Slack app: flag delivery, the buttons and forms people act with, the audit's questions."""
