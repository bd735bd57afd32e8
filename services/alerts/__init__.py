"""Alerts: turns rollups into firing/resolved alert events when targets slip."""
