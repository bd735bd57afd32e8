"""The pure core: periods, catalog, registry, validation, rollups, alert rules; no I/O library."""
