"""Ingest: the HTTP API local systems send reports to; validates them and publishes to Kafka."""
