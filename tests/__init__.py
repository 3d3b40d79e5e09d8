"""Kabashoax test suite."""
