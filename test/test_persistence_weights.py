"""Weight blobs: exact round trip, and a precise WeightsError for every way a blob is wrong."""
import array
import io
import os
import pickle

import pytest
import safetensors.torch
import torch

from ami_nodes.persistence import WeightsError, decode_weights, encode_weights, tensor_spec

torch.set_num_threads(1)


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        'enc.weight': torch.randn(16, 8, generator=g),
        'enc.bias': torch.randn(16, generator=g),
        'head.weight': torch.randn(4, 16, generator=g).to(torch.bfloat16),
        'head.mask': torch.rand(4, generator=g) > 0.5,
        'counter': torch.tensor(7, dtype=torch.int64),
        'empty': torch.zeros(0, 3, dtype=torch.float16),
    }


def test_round_trip_is_exact_and_carries_metadata():
    state = _state()
    blob = encode_weights(state, version=12, model='policy', extra={'run': 'abc'})
    packet = decode_weights(blob, expected=tensor_spec(state), model='policy', newer_than=11)
    assert packet.version == 12 and packet.model == 'policy'
    assert set(packet.tensors) == set(state)
    for name, tensor in state.items():
        assert packet.tensors[name].dtype == tensor.dtype
        assert torch.equal(packet.tensors[name], tensor), name
    assert packet.metadata['run'] == 'abc'
    assert len(packet.metadata['sha256']) == 64 and float(packet.metadata['created']) > 0


def test_accepts_the_buffers_a_ros_message_gives():
    blob = encode_weights(_state(), 1, 'policy')
    for view in (bytearray(blob), memoryview(blob), array.array('B', blob)):
        assert decode_weights(view).version == 1


def test_tied_and_non_contiguous_tensors_are_stored():
    shared = torch.arange(12.0).reshape(3, 4)
    state = {'a': shared, 'b': shared, 'c': shared.t(), 'd': shared[1]}
    packet = decode_weights(encode_weights(state, 0, 'm'))
    for name, tensor in state.items():
        assert torch.equal(packet.tensors[name], tensor)


@pytest.mark.parametrize('cut', [0, 5, 8, 40, -1, -100])
def test_truncated_blob_is_refused(cut):
    blob = encode_weights(_state(), 1, 'policy')
    with pytest.raises(WeightsError, match='truncated|not a weights blob|corrupt'):
        decode_weights(blob[:cut])


def test_foreign_bytes_are_refused():
    with pytest.raises(WeightsError, match='not a safetensors blob|truncated'):
        decode_weights(b'\x80\x04' + os.urandom(100))
    with pytest.raises(WeightsError, match='no __metadata__'):
        decode_weights(safetensors.torch.save({'w': torch.zeros(2)}))


def test_checksum_mismatch_is_detected():
    blob = bytearray(encode_weights(_state(), 3, 'policy'))
    blob[-20] ^= 0xFF  # a byte of tensor data, header untouched
    with pytest.raises(WeightsError, match=r"checksum mismatch for 'policy' v3.*resend"):
        decode_weights(bytes(blob))


def test_wrong_model_and_stale_version_are_refused():
    blob = encode_weights(_state(), 5, 'policy')
    with pytest.raises(WeightsError, match="for model 'policy', not 'encoder'"):
        decode_weights(blob, model='encoder')
    with pytest.raises(WeightsError, match='version 5 is not newer than 5'):
        decode_weights(blob, newer_than=5)


def test_shape_dtype_missing_and_unexpected_tensors_are_named():
    state = _state()
    expected = tensor_spec(state)
    expected['enc.weight'] = ((16, 9), torch.float32)
    expected['enc.bias'] = ((16,), torch.float64)
    expected['new.weight'] = ((2,), torch.float32)
    del expected['counter']
    with pytest.raises(WeightsError) as info:
        decode_weights(encode_weights(state, 1, 'policy'), expected=expected)
    message = str(info.value)
    assert "tensor 'enc.weight' has shape [16, 8], expected [16, 9]" in message
    assert "tensor 'enc.bias' has dtype torch.float32, expected torch.float64" in message
    assert "missing tensor 'new.weight'" in message
    assert "unexpected tensor 'counter'" in message


def test_pickles_are_never_executed(tmp_path):
    marker = tmp_path / 'pwned'

    class Exploit:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    payloads = [pickle.dumps(Exploit())]
    buffer = io.BytesIO()
    torch.save({'w': torch.zeros(2), 'x': Exploit()}, buffer)
    payloads.append(buffer.getvalue())
    for payload in payloads:
        with pytest.raises(WeightsError):
            decode_weights(payload)
    assert not marker.exists()


def test_bad_arguments_are_caller_errors():
    with pytest.raises(ValueError, match='reserved'):
        encode_weights(_state(), 1, 'policy', extra={'version': '9'})
    with pytest.raises(ValueError, match='non-negative int'):
        encode_weights(_state(), -1, 'policy')
    with pytest.raises(TypeError, match="'x' is a list"):
        encode_weights({'x': [1, 2]}, 1, 'policy')
