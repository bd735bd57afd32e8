"""Integration tests of dxpulse's faust layer, on the real Kafka."""
