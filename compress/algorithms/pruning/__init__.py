"""Pruning passes (one algorithm per file) and the mask builders they share (`masks`)."""
