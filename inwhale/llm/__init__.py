"""LLM quantization: the evaluation harness, and (in their own modules) the methods.

:mod:`inwhale.llm.harness` holds what every method needs — :func:`perplexity`,
:func:`find_linears`, :func:`norm_linear_pairs`, :func:`calibration_batches`, the
activation hooks, the decoder blocks (:func:`decoder_blocks`, :func:`block_linears`, block
replay) and the :class:`QuantReport` every ``*_quantize_`` method returns — written against
plain ``nn.Linear`` layers, for any architecture.

The methods, one module each (Part VI of the book):

* :mod:`~inwhale.llm.stats`, :mod:`~inwhale.llm.rtn` — weight statistics, round-to-nearest
* :mod:`~inwhale.llm.act_quant`, :mod:`~inwhale.llm.llm_int8`, :mod:`~inwhale.llm.smoothquant`,
  :mod:`~inwhale.llm.zeroquant` — W8A8 and activation outliers
* :mod:`~inwhale.llm.gptq`, :mod:`~inwhale.llm.awq`, :mod:`~inwhale.llm.hqq`,
  :mod:`~inwhale.llm.rotation` — weight-only methods
* :mod:`~inwhale.llm.kv` — KV-cache quantization
* :mod:`~inwhale.llm.gguf_formats`, :mod:`~inwhale.llm.storage` — GGUF blocks (Q8_0, Q4_0,
  Q4_1, Q4_K, Q6_K) and packed safetensors storage
* :mod:`~inwhale.llm.qlora`, :mod:`~inwhale.llm.lowrank` — NF4 + LoRA, low rank + quantization
* :mod:`~inwhale.llm.results` — every method on one model, one table
"""

from inwhale.llm.harness import (
    NormLinears,
    PerplexityResult,
    QuantReport,
    block_linears,
    calibration_batches,
    capture_linear_inputs,
    decoder_blocks,
    find_linears,
    for_each_linear_input,
    linear_input_absmax,
    norm_linear_pairs,
    perplexity,
)

__all__ = [
    "NormLinears",
    "PerplexityResult",
    "QuantReport",
    "block_linears",
    "calibration_batches",
    "capture_linear_inputs",
    "decoder_blocks",
    "find_linears",
    "for_each_linear_input",
    "linear_input_absmax",
    "norm_linear_pairs",
    "perplexity",
]
