"""Weights as data: a safetensors blob with version, model name and checksum.

The blob is what travels between nodes (as std_msgs/UInt8MultiArray data) and what the
policy swaps in. Decoding parses a JSON header and copies raw bytes; nothing is ever
unpickled, so a blob from the network cannot run code.
"""
from __future__ import annotations

import json
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import safetensors.torch
import torch
from safetensors import SafetensorError

from ami_nodes.persistence.errors import WeightsError
from ami_nodes.persistence.tensors import Spec, payload_sha256, spec_mismatches, tensor_spec, to_storable

FORMAT = 'ami_nodes.weights/1'
RESERVED_KEYS = frozenset({'format', 'model', 'version', 'sha256', 'created'})
Blob = bytes | bytearray | memoryview


@dataclass(frozen=True)
class WeightsPacket:
    """A decoded, verified weight blob."""

    version: int
    model: str
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)


def encode_weights(state_dict: Mapping[str, torch.Tensor], version: int, model: str,
                   extra: Mapping[str, str] | None = None) -> bytes:
    """Serialise a state_dict into a self-describing, checksummed safetensors blob."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f'version must be a non-negative int, got {version!r}')
    extra = dict(extra or {})
    clash = RESERVED_KEYS & extra.keys()
    if clash:
        raise ValueError(f'extra metadata may not use the reserved keys {sorted(clash)}')
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError('extra metadata must map str to str')
    tensors = to_storable(state_dict)
    metadata = {**extra, 'format': FORMAT, 'model': model, 'version': str(version),
                'sha256': payload_sha256(tensors), 'created': f'{time.time():.6f}'}
    return safetensors.torch.save(tensors, metadata=metadata)


def read_header(blob: Blob) -> dict:
    """The safetensors JSON header, with a precise error for truncated or foreign bytes."""
    size = len(blob)
    if size < 8:
        raise WeightsError(f'not a weights blob: {size} bytes, a safetensors blob has at '
                           'least 8; the message was truncated or is not from encode_weights')
    (header_len,) = struct.unpack('<Q', bytes(blob[:8]))
    if header_len > size - 8:
        raise WeightsError(f'truncated weights blob: header says {header_len} bytes but only '
                           f'{size - 8} follow; resend the complete blob')
    try:
        header = json.loads(bytes(blob[8:8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError('not a safetensors blob: its header is not JSON (a pickle or '
                           'torch.save file? those are refused; re-export with '
                           f'encode_weights): {exc}') from None
    if not isinstance(header, dict):
        raise WeightsError('not a safetensors blob: its header is not a JSON object')
    return header


def _metadata(header: dict) -> tuple[dict[str, str], int, str]:
    meta = header.get('__metadata__')
    if not isinstance(meta, dict):
        raise WeightsError('weights blob has no __metadata__: it was not written by '
                           'encode_weights, so its version and checksum are unknown')
    missing = sorted(k for k in ('model', 'version', 'sha256') if k not in meta)
    if missing:
        raise WeightsError(f'weights blob metadata lacks {missing}; re-encode it with '
                           'encode_weights')
    try:
        version = int(meta['version'])
    except (TypeError, ValueError):
        raise WeightsError(f"weights blob version {meta['version']!r} is not an int") from None
    return meta, version, meta['model']


def decode_weights(blob: Blob, *, expected: Mapping[str, Spec] | None = None,
                   model: str | None = None, newer_than: int | None = None) -> WeightsPacket:
    """Parse and verify a blob from encode_weights; raise WeightsError saying what is wrong.

    Cheap checks (model name, version) run before any tensor is copied, so stale or foreign
    blobs cost almost nothing to reject.
    """
    meta, version, blob_model = _metadata(read_header(blob))
    if model is not None and blob_model != model:
        raise WeightsError(f'weights are for model {blob_model!r}, not {model!r}; check which '
                           'topic this subscriber listens on')
    if newer_than is not None and version <= newer_than:
        raise WeightsError(f'weights version {version} is not newer than {newer_than}; '
                           'ignore this blob (a re-publish or a late duplicate)')
    try:
        tensors = safetensors.torch.load(blob if isinstance(blob, bytes) else bytes(blob))
    except SafetensorError as exc:
        raise WeightsError(f'corrupt or truncated weights blob: {exc}; resend it') from None
    digest = payload_sha256(tensors)
    if digest != meta['sha256']:
        raise WeightsError(f'weights checksum mismatch for {blob_model!r} v{version}: '
                           f'payload hashes to {digest[:12]}, metadata says '
                           f"{meta['sha256'][:12]}; the blob was corrupted, resend it")
    if expected is not None:
        problems = spec_mismatches(tensor_spec(tensors), expected)
        if problems:
            raise WeightsError(f'weights {blob_model!r} v{version} do not fit the model: '
                               + '; '.join(problems))
    return WeightsPacket(version=version, model=blob_model, tensors=tensors, metadata=meta)
