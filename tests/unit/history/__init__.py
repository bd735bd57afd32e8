"""Unit tests of the history service."""
