"""Autoloader core: domain logic with no web, UI or ORM dependencies."""
