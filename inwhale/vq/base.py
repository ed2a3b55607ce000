"""The one interface every vector quantizer in :mod:`inwhale.vq` shares.

A vector quantizer maps a vector ``x ∈ R^D`` to a tuple of ``M`` small integers (the *code*)
and back to a reconstruction ``x̂ ∈ R^D``:

    codes = encode(X)        # (N, D) float  -> (N, M) int64, each entry in [0, K)
    X̂     = decode(codes)    # (N, M) int64  -> (N, D) float

With ``M`` codebooks of ``K`` entries a vector costs ``code_bits = M · log2(K)`` bits, i.e.
``code_bits / D`` bits per dimension. k-means VQ (``M = 1``), product quantization, OPQ,
residual and additive quantization all subclass :class:`VectorQuantizer`, so an experiment can
swap one for another and compare distortion at the same code size.

Glossary: ``N`` vectors, ``D`` dimensions, ``M`` codebooks, ``K`` entries per codebook,
``C`` a codebook (K, D) or (K, D/M).
"""

from __future__ import annotations

import math

import torch

from inwhale.core.checks import check_tensor


def check_data(X: object, name: str = "X", dim: int | None = None) -> torch.Tensor:
    """Check that ``X`` is a non-empty 2-D floating tensor ``(N, D)`` (with ``D == dim``)."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D > 0, got {tuple(X.shape)}")
    check_tensor(X, name)  # floating, finite
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the fitted dimension), got {X.shape[1]}")
    return X


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is a positive ``int`` (not a bool), else raise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


class VectorQuantizer:
    """Base class: ``fit(X)``, ``encode(X) -> codes``, ``decode(codes) -> X̂``.

    Subclasses set ``self.num_codebooks`` (M), ``self.codebook_size`` (K) and ``self.dim``
    (D) in ``fit`` and implement ``_encode``/``_decode``.
    """

    num_codebooks: int
    codebook_size: int
    dim: int | None = None

    def fit(self, X: torch.Tensor) -> VectorQuantizer:
        """Learn the codebooks from training vectors ``X`` of shape (N, D); returns ``self``."""
        raise NotImplementedError

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_fitted(self) -> int:
        if self.dim is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")
        return self.dim

    @torch.no_grad()
    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """Codes of shape (N, M), int64 in ``[0, K)``."""
        return self._encode(check_data(X, dim=self._check_fitted()))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstructions (N, D) from codes (N, M)."""
        self._check_fitted()
        if not isinstance(codes, torch.Tensor) or codes.ndim != 2:
            raise TypeError("codes must be a 2-D integer tensor (N, M)")
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"codes must have {self.num_codebooks} columns, got {codes.shape[1]}")
        return self._decode(codes.long())

    def quantize(self, X: torch.Tensor) -> torch.Tensor:
        """``decode(encode(X))``: the reconstruction of ``X``."""
        return self.decode(self.encode(X))

    @property
    def code_bits(self) -> float:
        """Bits per vector, ``M · log2(K)``."""
        return self.num_codebooks * math.log2(self.codebook_size)

    @property
    def bits_per_dim(self) -> float:
        """Bits per scalar component, ``code_bits / D``."""
        return self.code_bits / self._check_fitted()
