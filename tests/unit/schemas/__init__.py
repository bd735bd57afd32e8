"""Unit tests of dxpulse's schemas layer."""
