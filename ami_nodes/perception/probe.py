"""Linear probes: how much of the ground truth is linearly readable from a representation.

Closed-form ridge regression in numpy. Inputs are standardised with training statistics and the
ridge strength is picked from a fixed grid on an inner validation split of the training set
only, the same way for every representation compared, then refit on the whole training set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ami_nodes.perception.stats import effective_rank

ALPHAS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


@dataclass
class RidgeModel:
    """Standardisation plus linear weights; `predict` maps raw inputs to targets."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias


def fit_ridge_path(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[RidgeModel]:
    """Ridge on standardised x for each alpha; y is (N, T). One SVD serves every alpha, and
    solving through it keeps wide x (more dimensions than samples) cheap and stable."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    bias = y.mean(axis=0)
    u, s, vt = np.linalg.svd((x - mean) / scale, full_matrices=False)
    projected = u.T @ (y - bias)
    return [RidgeModel(mean, scale, vt.T @ ((s / (s ** 2 + a))[:, None] * projected), bias, a) for a in alphas]


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> RidgeModel:
    """Ridge on standardised x with one alpha."""
    return fit_ridge_path(x, y, (alpha,))[0]


def r2_scores(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Coefficient of determination per target column (1 is perfect, 0 is predicting the mean)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    prediction = prediction.reshape(y.shape)
    residual = ((y - prediction) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - residual / np.maximum(total, 1e-12)


def _inner_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * 0.8)
    return order[:cut], order[cut:]


def select_alpha(x: np.ndarray, y: np.ndarray, score, seed: int = 0) -> float:
    """The grid alpha with the best `score(y_val, prediction)` on an inner split of the training set."""
    fit_idx, val_idx = _inner_split(len(x), seed)
    models = fit_ridge_path(x[fit_idx], y[fit_idx], ALPHAS)
    scores = [score(y[val_idx], model.predict(x[val_idx])) for model in models]
    return ALPHAS[int(np.argmax(scores))]


def regression_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """Held-out R² per target column and the alpha used."""
    alpha = select_alpha(train_x, train_y, lambda y, p: float(r2_scores(y, p).mean()), seed)
    model = fit_ridge(train_x, train_y, alpha)
    return r2_scores(test_y, model.predict(test_x)), alpha


def classification_probe(train_x: np.ndarray, train_labels: np.ndarray, test_x: np.ndarray,
                         test_labels: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Held-out accuracy of argmax over a ridge fit to one-hot labels, and the alpha used."""
    classes = np.unique(train_labels)
    onehot = (train_labels[:, None] == classes[None, :]).astype(np.float64)

    def accuracy(y: np.ndarray, p: np.ndarray) -> float:
        return float((classes[p.argmax(axis=1)] == classes[y.argmax(axis=1)]).mean())

    alpha = select_alpha(train_x, onehot, accuracy, seed)
    predicted = classes[fit_ridge(train_x, onehot, alpha).predict(test_x).argmax(axis=1)]
    return float((predicted == test_labels).mean()), alpha


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy of always answering the training set's most common label (the floor to beat)."""
    values, counts = np.unique(train_labels, return_counts=True)
    return float((test_labels == values[counts.argmax()]).mean())


__all__ = ['ALPHAS', 'RidgeModel', 'fit_ridge', 'fit_ridge_path', 'r2_scores', 'select_alpha', 'regression_probe',
           'classification_probe', 'majority_accuracy', 'effective_rank']
