"""Unit tests of dxpulse's shared HTTP layer."""
