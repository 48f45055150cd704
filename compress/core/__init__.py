"""The framework: pass configs, module selection, context, registry, reports, and `apply`.

Algorithms (compress/algorithms) are small classes holding their maths; engines
(compress/engines) walk the model and move data; `core.apply` drives both.
"""
