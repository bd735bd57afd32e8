"""Unit tests of dxpulse's domain layer."""
