"""Scaling baselines: dense ladders (hub or trained here), fits, frontiers, plots, reports.

Kept empty on purpose: `import compress.scaling` must stay fast, so import the module you need,
e.g. `from compress.scaling.ladder import load_ladder`.
"""
