"""Reusable NiceGUI widgets for the console."""
