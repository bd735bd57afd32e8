"""Query: the read-only HTTP API over PostgreSQL history (current rollups, revisions, reporters)."""
