"""Measuring enhanced images: the image-quality scores and the scoring of a results folder."""
