"""Small programs showing how other teams use dxpulse's topics and APIs."""
