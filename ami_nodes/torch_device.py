"""The `device` and `torch_threads` parameters every torch node shares."""
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


def configure_torch(device: str, threads: int) -> torch.device:
    """Resolve the device and cap torch's CPU threads.

    Five processes share the machine; torch's default of one thread per core in each of them
    oversubscribes the CPU and turns milliseconds into hundreds of milliseconds.
    """
    torch.set_num_threads(threads)
    return resolve_device(device)
