"""Vector quantization: quantize whole vectors at once instead of one number at a time.

* :mod:`~inwhale.vq.base` — the shared interface ``fit / encode / decode / code_bits``;
* :mod:`~inwhale.vq.kmeans` — k-means (Lloyd + k-means++) and full-search VQ;
* :mod:`~inwhale.vq.pq` — product quantization (Jégou et al. 2011);
* :mod:`~inwhale.vq.opq` — optimized PQ with a learned rotation (Ge et al. 2013);
* :mod:`~inwhale.vq.rq` — residual (multi-stage) quantization;
* :mod:`~inwhale.vq.aq` — additive quantization (Babenko & Lempitsky 2014), ICM encoder;
* :mod:`~inwhale.vq.lattice` — Z^n, D4 and E8 nearest-point quantizers (Conway & Sloane 1982);
* :mod:`~inwhale.vq.vqvae` — a VQ-VAE codebook with straight-through gradients (2017).
"""

from inwhale.vq.aq import AdditiveQuantizer
from inwhale.vq.base import VectorQuantizer
from inwhale.vq.kmeans import KMeansVQ, kmeans
from inwhale.vq.lattice import LatticeQuantizer, nearest_dn, nearest_e8, normalized_second_moment
from inwhale.vq.opq import OptimizedProductQuantizer
from inwhale.vq.pq import ProductQuantizer
from inwhale.vq.rq import ResidualQuantizer
from inwhale.vq.vqvae import TinyVQVAE, VQCodebook, train_vqvae

__all__ = [
    "AdditiveQuantizer",
    "KMeansVQ",
    "LatticeQuantizer",
    "OptimizedProductQuantizer",
    "ProductQuantizer",
    "ResidualQuantizer",
    "TinyVQVAE",
    "VQCodebook",
    "VectorQuantizer",
    "kmeans",
    "nearest_dn",
    "nearest_e8",
    "normalized_second_moment",
    "train_vqvae",
]
