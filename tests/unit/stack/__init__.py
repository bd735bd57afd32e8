"""Unit tests of dxpulse's stack layer."""
