"""History: writes every rollup revision and each reporter's latest value to PostgreSQL."""
