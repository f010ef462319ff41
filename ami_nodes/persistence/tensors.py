"""Tensor helpers shared by weight blobs and checkpoints: checksums and shape/dtype specs."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch

Spec = tuple[tuple[int, ...], torch.dtype]


def to_storable(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors that safetensors accepts.

    safetensors refuses tensors that share memory (tied weights, views of one buffer), so
    every tensor after the first on a storage is cloned.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f'{name!r} is a {type(tensor).__name__}, not a torch.Tensor')
        t = tensor.detach().to('cpu').contiguous()
        ptr = t.untyped_storage().data_ptr()
        if t.numel() and ptr in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def payload_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes, in name order.

    Independent of how the container lays the tensors out, so the same weights always give
    the same digest.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to('cpu').contiguous()
        digest.update(f'{name}\0{t.dtype}\0{tuple(t.shape)}\0'.encode())
        if t.numel():
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def tensor_spec(state: Mapping[str, torch.Tensor]) -> dict[str, Spec]:
    """What a state_dict must look like: `{name: (shape, dtype)}`."""
    return {name: (tuple(t.shape), t.dtype) for name, t in state.items()}


def spec_mismatches(actual: Mapping[str, Spec], expected: Mapping[str, Spec]) -> list[str]:
    """Every difference between two specs, one readable line each (empty when they fit)."""
    problems = [f'missing tensor {n!r} (expected shape {list(expected[n][0])}, '
                f'{expected[n][1]})' for n in expected if n not in actual]
    problems += [f'unexpected tensor {n!r} (shape {list(actual[n][0])}, {actual[n][1]})'
                 for n in actual if n not in expected]
    for name in expected:
        if name not in actual:
            continue
        (shape, dtype), (want_shape, want_dtype) = actual[name], expected[name]
        if tuple(shape) != tuple(want_shape):
            problems.append(f'tensor {name!r} has shape {list(shape)}, '
                            f'expected {list(want_shape)}')
        if dtype != want_dtype:
            problems.append(f'tensor {name!r} has dtype {dtype}, expected {want_dtype}')
    return problems
