"""Aggregate: the faust worker that keeps the latest value per reporter and publishes rollups."""
