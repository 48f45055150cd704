"""Engines own traversal and data movement: `oneshot` (per module, no data), `sequential`
(block-wise calibration), `train` (distillation). `stats` holds the running statistics."""
