"""Engines drive passes over a model: one-shot, block-wise calibration, and training."""
