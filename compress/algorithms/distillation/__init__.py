"""Knowledge distillation: the `distill` pass (kd.py), its losses, quantization-aware training."""
