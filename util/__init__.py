"""Helpers for images, files, HTML pages and the training display."""
