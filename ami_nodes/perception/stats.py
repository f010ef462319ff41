"""Feature statistics a person (or a test) can read to see whether the encoder collapsed."""
from __future__ import annotations

import numpy as np


def effective_rank(features: np.ndarray) -> float:
    """exp(entropy of the normalised singular values) of the centred (N, D) feature matrix.

    Centring first keeps the shared mean (large for ReLU-fed features) from counting as a
    direction. 1.0 means everything lies on one line; D means all directions are used equally.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        return 0.0
    singular = np.linalg.svd(features - features.mean(axis=0), compute_uv=False)
    total = singular.sum()
    if total <= 1e-12:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def feature_summary(features: np.ndarray) -> dict[str, float]:
    """Mean, mean per-dimension std and effective rank of an (N, D) window."""
    features = np.asarray(features, dtype=np.float64)
    if features.size == 0:
        return {'mean': 0.0, 'std': 0.0, 'effective_rank': 0.0, 'count': 0.0}
    return {
        'mean': float(features.mean()),
        'std': float(features.std(axis=0).mean()),
        'effective_rank': effective_rank(features),
        'count': float(features.shape[0]),
    }
