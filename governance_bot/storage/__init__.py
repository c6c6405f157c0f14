"""Storage: SQLAlchemy models, the archive, flags and outbox, the audit log and migrations."""
