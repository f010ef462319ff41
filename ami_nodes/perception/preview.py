"""An image for rqt_image_view: the frame beside actual vs predicted features.

Three heat strips, one cell per feature dimension, on one shared colour scale: what the encoder
sees now (f_t), what the predictor expected from f_{t-1} and the last action, and the absolute
error. A well-trained pair shows the first two strips alike and a dark third strip; a collapsed
encoder shows flat strips.
"""
from __future__ import annotations

import cv2
import numpy as np

LABELS = ('f_t', 'predicted', '|error|')


def _strip(values: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    levels = np.clip(values / scale * 127.5 + 127.5, 0, 255).astype(np.uint8)[None, :]
    cells = cv2.resize(levels, (width, height), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap(cells, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def render_preview(frame: np.ndarray, features: np.ndarray | None, predicted: np.ndarray | None,
                   size: int = 168, panel_width: int = 256) -> np.ndarray:
    """HxWx3 uint8: the frame scaled to `size` on the left, the feature strips on the right."""
    left = cv2.resize(frame, (size, size), interpolation=cv2.INTER_NEAREST)
    panel = np.zeros((size, panel_width, 3), dtype=np.uint8)
    if features is not None:
        predicted = features * 0.0 if predicted is None else predicted
        error = np.abs(features - predicted)
        scale = float(max(np.abs(features).max(), np.abs(predicted).max(), 1e-6))
        band = size // len(LABELS)
        for row, (label, values) in enumerate(zip(LABELS, (features, predicted, error))):
            top = row * band
            panel[top + 14:top + band - 2] = _strip(values, scale, panel_width, band - 16)
            cv2.putText(panel, label, (2, top + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    return np.concatenate([left, panel], axis=1)
