"""Helpers, fixtures and builders that more than one test module uses (one module per system)."""
