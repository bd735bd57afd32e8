"""What both HTTP APIs (ingest and query) share: problem+json refusals and request-level guards."""
