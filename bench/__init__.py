"""Benchmarks of the dxpulse pipeline against raw Kafka clients (issue 7); run ``python -m bench``."""
