"""Unit tests of dxpulse's kafka layer."""
