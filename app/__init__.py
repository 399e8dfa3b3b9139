"""Autoloader application: settings, metadata DB, REST API, console and CLI (the composition root)."""

__version__ = "0.1.0"
