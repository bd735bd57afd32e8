"""dxpulse: the event pipeline behind the national digital-transformation scoreboard."""

__version__ = "0.1.0"
