"""Generators of the docs' parts that are made from the code (`.venv/bin/python -m docs.generate`)."""
