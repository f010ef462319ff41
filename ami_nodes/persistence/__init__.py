"""Persistence without pickle: versioned weight blobs and multi-process atomic checkpoints."""
from ami_nodes.persistence.checkpoint import (
    CheckpointStore,
    apply_retention,
    clean_staging,
    latest_checkpoint,
    list_checkpoints,
    load_part,
    resolve_checkpoint,
    save_checkpoint,
)
from ami_nodes.persistence.errors import CheckpointError, PersistenceError, WeightsError
from ami_nodes.persistence.part import NodePart, check_compatible
from ami_nodes.persistence.state_codec import decode_state, encode_state
from ami_nodes.persistence.tensors import tensor_spec
from ami_nodes.persistence.weights import WeightsPacket, decode_weights, encode_weights

__all__ = [
    'CheckpointError', 'CheckpointStore', 'NodePart', 'PersistenceError', 'WeightsError',
    'WeightsPacket', 'apply_retention', 'check_compatible', 'clean_staging', 'decode_state',
    'decode_weights', 'encode_state', 'encode_weights', 'latest_checkpoint',
    'list_checkpoints', 'load_part', 'resolve_checkpoint', 'save_checkpoint', 'tensor_spec',
]
