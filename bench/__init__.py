"""Benchmarks of the dxpulse pipeline against raw Kafka clients; run ``python -m bench``."""
