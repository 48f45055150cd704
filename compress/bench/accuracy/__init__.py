"""Accuracy evaluators: perplexity + bits per byte, next-speech multiple choice, lm-eval tasks."""
