"""One node's share of a checkpoint: its files in memory, and back into states.

A part is `models/<key>.safetensors` (plain state_dicts), `trainers/`, `data/` and
`interaction/` as `<key>.json` (+ `<key>.safetensors` when the state holds arrays), and
`params.yaml`. Only these names are ever read; anything else (a `.pth`, a pickle) is refused
before a byte of it is parsed.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import yaml
from safetensors import SafetensorError

from ami_nodes.persistence.errors import CheckpointError
from ami_nodes.persistence.state_codec import decode_state, encode_state
from ami_nodes.persistence.tensors import spec_mismatches, tensor_spec, to_storable

STATE_SECTIONS = ('trainers', 'data', 'interaction')
PARAMS_FILE = 'params.yaml'
MODEL_FORMAT = 'ami_nodes.model/1'
_KEY = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]*')
_FILE = re.compile(r'(models|trainers|data|interaction)/([A-Za-z0-9][A-Za-z0-9_-]*)'
                   r'\.(json|safetensors)')

StateDict = Mapping[str, torch.Tensor]


def check_name(name: str, what: str) -> str:
    """Keys, node and checkpoint names become file names: keep them plain."""
    if not isinstance(name, str) or not _KEY.fullmatch(name):
        raise ValueError(f'{what} {name!r} must be letters, digits, _ or - '
                         '(it becomes a file name)')
    return name


def check_compatible(saved: StateDict, model_state: StateDict) -> None:
    """Raise CheckpointError naming every tensor whose name, shape or dtype differs."""
    problems = spec_mismatches(tensor_spec(saved), tensor_spec(model_state))
    if problems:
        raise CheckpointError('saved weights do not fit the model: ' + '; '.join(problems)
                              + '; start from scratch or from a checkpoint of this model')


@dataclass
class NodePart:
    """What one node saved, verified and decoded."""

    checkpoint: Path
    node: str
    models: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    trainers: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    interaction: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def model(self, name: str, like: StateDict | None = None) -> dict[str, torch.Tensor]:
        """A saved state_dict, checked against `like` (the live model's) before use."""
        if name not in self.models:
            raise CheckpointError(f'{self.checkpoint.name}/{self.node} has no model {name!r}; '
                                  f'it holds {sorted(self.models)}')
        state = self.models[name]
        if like is not None:
            try:
                check_compatible(state, like)
            except CheckpointError as exc:
                raise CheckpointError(f'model {name!r} in {self.checkpoint.name}/{self.node}: '
                                      f'{exc}') from None
        return state


def encode_part(*, models: Mapping[str, StateDict] | None = None,
                trainers: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None,
                interaction: Mapping[str, Any] | None = None,
                params: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Every file of a part as `{relative path: bytes}`; raises before anything is written."""
    files: dict[str, bytes] = {}
    for key, state in (models or {}).items():
        check_name(key, 'model name')
        files[f'models/{key}.safetensors'] = safetensors.torch.save(
            to_storable(state), metadata={'format': MODEL_FORMAT, 'model': key})
    for section, states in zip(STATE_SECTIONS, (trainers, data, interaction)):
        for key, state in (states or {}).items():
            check_name(key, f'{section} key')
            doc, blob = encode_state(state)
            files[f'{section}/{key}.json'] = doc
            if blob is not None:
                files[f'{section}/{key}.safetensors'] = blob
    files[PARAMS_FILE] = yaml.safe_dump(dict(params or {}), sort_keys=True).encode()
    return files


def decode_part(checkpoint: Path, node: str, files: Mapping[str, bytes]) -> NodePart:
    """Inverse of encode_part over verified bytes; unknown file names are refused."""
    part = NodePart(checkpoint=checkpoint, node=node)
    where = f'{checkpoint}/{node}'
    for rel, content in files.items():
        if rel == PARAMS_FILE:
            try:
                part.params = yaml.safe_load(content) or {}
            except yaml.YAMLError as exc:
                raise CheckpointError(f'{where}/{rel}: not plain YAML ({exc})') from None
            continue
        match = _FILE.fullmatch(rel)
        if match is None:
            raise CheckpointError(f'refusing {where}/{rel}: a checkpoint part holds only '
                                  'models/*.safetensors, <section>/*.json|.safetensors and '
                                  'params.yaml (nothing pickled is ever loaded)')
        section, key, ext = match.groups()
        if section == 'models':
            if ext != 'safetensors':
                raise CheckpointError(f'refusing {where}/{rel}: models are .safetensors only')
            try:
                part.models[key] = safetensors.torch.load(content)
            except SafetensorError as exc:
                raise CheckpointError(f'{where}/{rel}: corrupt safetensors ({exc})') from None
        elif ext == 'json':
            blob = files.get(f'{section}/{key}.safetensors')
            getattr(part, section)[key] = decode_state(content, blob, source=f'{where}/{rel}')
        elif f'{section}/{key}.json' not in files:
            raise CheckpointError(f'{where}/{rel} has no {key}.json describing it')
    return part
