"""The ingest's HTTP API: routes by resource, and the dependencies they share."""
