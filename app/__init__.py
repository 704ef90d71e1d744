"""Doorstep: virtual nursing home order dispatch."""
