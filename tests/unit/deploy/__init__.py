"""Unit tests of the deployment files."""
