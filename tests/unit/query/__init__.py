"""Unit tests of the query service."""
