"""The three dxpulse services: ingest (HTTP to Kafka), aggregate (rollups), alerts."""
