"""Unit tests of dxpulse's cli layer."""
