"""Nested training state without pickle: structure as JSON, tensors in safetensors.

Optimizer state_dicts, counters, RNG states and numpy replay buffers are trees of dicts,
lists and arrays. The tree goes into JSON with tagged nodes where JSON alone would lose the
type (int dict keys, tuples, arrays, non-finite floats); every tensor or array becomes a
named entry of one safetensors blob. Loading reads JSON and raw bytes only, so a crafted
checkpoint cannot execute code, and the round trip is exact (types, dtypes, key order).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError

from ami_nodes.persistence.errors import CheckpointError
from ami_nodes.persistence.tensors import to_storable

FORMAT = 'ami_nodes.state/1'
_TAGS = ('$dict', '$tuple', '$tensor', '$ndarray', '$npscalar', '$float')


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def _name(self, path: str) -> str:
        path = path.lstrip('/') or 'root'
        name, n = path, 1
        while name in self.tensors:
            name, n = f'{path}#{n}', n + 1
        return name

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, np.generic):  # before float: np.float64 subclasses float
            return {'$npscalar': self._array(np.asarray(value), path),
                    'dtype': value.dtype.str}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else {'$float': repr(float(value))}
        if isinstance(value, torch.Tensor):
            name = self._name(path)
            self.tensors[name] = value
            return {'$tensor': name}
        if isinstance(value, np.ndarray):
            return {'$ndarray': self._array(value, path), 'dtype': value.dtype.str}
        if isinstance(value, Mapping):
            return self._mapping(value, path)
        if isinstance(value, tuple):
            return {'$tuple': [self.encode(v, f'{path}/{i}') for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f'{path}/{i}') for i, v in enumerate(value)]
        raise TypeError(f'cannot store {type(value).__name__} at {path or "<root>"}: only '
                        'dict, list, tuple, int, float, bool, str, None, tensors and numpy '
                        'arrays are stored (no pickle)')

    def _array(self, array: np.ndarray, path: str) -> str:
        if array.dtype.hasobject or array.dtype.kind in 'USV':
            raise TypeError(f'cannot store numpy dtype {array.dtype} at {path or "<root>"}: '
                            'only numeric and bool arrays are stored')
        native = array.astype(array.dtype.newbyteorder('='), order='C', copy=False)
        if not native.flags.writeable:  # torch.from_numpy warns on read-only memory
            native = native.copy()
        name = self._name(path)
        self.tensors[name] = torch.from_numpy(native)
        return name

    def _mapping(self, value: Mapping, path: str) -> Any:
        for key in value:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f'cannot store dict key {key!r} at {path or "<root>"}: '
                                'keys must be str or int')
        items = [(key, self.encode(v, f'{path}/{key}')) for key, v in value.items()]
        plain = all(isinstance(k, str) and k not in _TAGS for k, _ in items)
        if plain:
            return dict(items)
        return {'$dict': [[k, v] for k, v in items]}


def _decode(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    tag = next((t for t in _TAGS if t in node), None)
    if tag is None:
        return {k: _decode(v, tensors) for k, v in node.items()}
    body = node[tag]
    if tag == '$dict':
        return {k: _decode(v, tensors) for k, v in body}
    if tag == '$tuple':
        return tuple(_decode(v, tensors) for v in body)
    if tag == '$float':
        return float(body)
    if body not in tensors:
        raise CheckpointError(f'state refers to tensor {body!r}, which its .safetensors file '
                              'lacks; the checkpoint is inconsistent, use an older one')
    if tag == '$tensor':
        return tensors[body]
    array = tensors[body].numpy().astype(np.dtype(node['dtype']), copy=False)
    return array if tag == '$ndarray' else array[()]


def encode_state(state: Any) -> tuple[bytes, bytes | None]:
    """(JSON structure, safetensors blob or None when the state holds no arrays)."""
    encoder = _Encoder()
    tree = encoder.encode(state, '')
    doc = json.dumps({'format': FORMAT, 'state': tree}, allow_nan=False, separators=(',', ':'))
    blob = (safetensors.torch.save(to_storable(encoder.tensors), metadata={'format': FORMAT})
            if encoder.tensors else None)
    return doc.encode(), blob


def decode_state(doc: bytes, blob: bytes | None, source: str = '<state>') -> Any:
    """Exact inverse of encode_state; `source` names the files in error messages."""
    try:
        parsed = json.loads(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f'{source}: not a JSON state file ({exc})') from None
    if not isinstance(parsed, dict) or parsed.get('format') != FORMAT:
        raise CheckpointError(f'{source}: not a state file of format {FORMAT}')
    try:
        tensors = safetensors.torch.load(blob) if blob is not None else {}
    except SafetensorError as exc:
        raise CheckpointError(f'{source}: corrupt tensor file ({exc})') from None
    return _decode(parsed['state'], tensors)
