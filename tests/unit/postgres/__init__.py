"""Unit tests of dxpulse's postgres layer."""
