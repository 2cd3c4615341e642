"""Rebuild every message's path and find what went wrong, and where."""
