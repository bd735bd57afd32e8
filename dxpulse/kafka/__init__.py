"""Kafka helpers every service shares: topics, record batches, subscribers, dead letters."""
