"""One router per resource of the ingest API."""
