"""The `device` parameter every torch node shares: auto, cpu or cuda."""
from __future__ import annotations

import torch

DEVICE_CHOICES = ('auto', 'cpu', 'cuda')


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"device is {name!r}, expected one of {DEVICE_CHOICES}")
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    return torch.device(name)
