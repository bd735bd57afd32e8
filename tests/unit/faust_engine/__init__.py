"""Unit tests of dxpulse's faust_engine layer."""
