"""A small CNN that turns one RGB frame into a feature vector.

Nature-DQN style convolutions (stride 4/2/1) followed by an adaptive average pool to a fixed
7x7 grid, so the same weights run on 84, 128 or 256 pixel inputs and the linear head's size
does not grow with the image (at 84x84 the pool is the identity).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

POOL_GRID = 7
MIN_IMAGE_SIZE = 36  # smallest input for which every convolution still has an output


class Encoder(nn.Module):
    """Frame (B, C, H, W) in [0, 1] -> features (B, feature_dim)."""

    def __init__(self, image_size: int = 84, feature_dim: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(f'image_size is {image_size}; the encoder needs at least {MIN_IMAGE_SIZE}')
        self.image_size = image_size
        self.feature_dim = feature_dim
        self.in_channels = in_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(POOL_GRID),
        )
        self.head = nn.Linear(64 * POOL_GRID * POOL_GRID, feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Centre the input so the first layer does not start with a large constant offset.
        return self.head(self.conv(images - 0.5).flatten(1))


def frame_to_tensor(rgb: np.ndarray, device: torch.device | str = 'cpu') -> torch.Tensor:
    """HxWx3 uint8 RGB -> 1x3xHxW float32 in [0, 1] on `device`."""
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an HxWxC uint8 frame, got shape {rgb.shape} dtype {rgb.dtype}')
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    return tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def frames_to_batch(frames: np.ndarray, device: torch.device | str = 'cpu') -> torch.Tensor:
    """B x H x W x 3 uint8 RGB -> B x 3 x H x W float32 in [0, 1] on `device`."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)
