"""Algorithms: one per file, each a config plus the one or two functions that are its maths."""
