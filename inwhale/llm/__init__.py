"""LLM quantization: the evaluation harness, and (in their own modules) the methods.

:mod:`inwhale.llm.harness` holds what every method needs — :func:`perplexity`,
:func:`find_linears`, :func:`norm_linear_pairs`, :func:`calibration_batches` and the
activation hooks — written against plain ``nn.Linear`` layers, for any architecture.
"""

from inwhale.llm.harness import (
    NormLinears,
    PerplexityResult,
    calibration_batches,
    capture_linear_inputs,
    find_linears,
    for_each_linear_input,
    linear_input_absmax,
    norm_linear_pairs,
    perplexity,
)

__all__ = [
    "NormLinears",
    "PerplexityResult",
    "calibration_batches",
    "capture_linear_inputs",
    "find_linears",
    "for_each_linear_input",
    "linear_input_absmax",
    "norm_linear_pairs",
    "perplexity",
]
