"""PostgreSQL: migrations, the token store, and retrying through an outage."""
