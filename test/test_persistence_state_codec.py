"""Nested states (optimizer state, counters, RNG, numpy buffers) round-trip exactly, no pickle."""
import math

import numpy as np
import pytest
import torch

from ami_nodes.persistence import decode_state, encode_state

torch.set_num_threads(1)


def assert_identical(a, b, path='state'):
    """Equal values of exactly the same types and dtypes, all the way down."""
    assert type(a) is type(b), f'{path}: {type(a)} != {type(b)}'
    if isinstance(a, dict):
        assert list(a) == list(b), f'{path}: keys {list(a)} != {list(b)}'
        for key in a:
            assert_identical(a[key], b[key], f'{path}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f'{path}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in 'fc'), path
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b), path


def round_trip(state):
    doc, blob = encode_state(state)
    return decode_state(doc, blob)


def test_optimizer_state_round_trips_with_int_keys():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95))
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    restored = round_trip(state)
    assert_identical(state, restored)
    assert list(restored['state']) == [0, 1, 2, 3]


def test_every_supported_type_round_trips_exactly():
    state = {
        'none': None, 'flag': True, 'zero_int': 0, 'big': 2 ** 100, 'neg': -3,
        'floats': [0.1, -0.0, 1e308, float('inf'), -float('inf'), float('nan')],
        'text': 'héllo', 'tuple': (1, (2.0, 'x'), [None]), 'empty': {'l': [], 't': (), 'd': {}},
        7: 'int key', '$tuple': 'a key that looks like a tag', '$dict': {1: 2},
        'tensors': [torch.arange(6, dtype=torch.int16).reshape(2, 3), torch.tensor(2.5),
                    torch.ones(3, dtype=torch.bfloat16), torch.zeros(0), torch.tensor([True])],
        'arrays': {
            'u8': np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
            'big_endian': np.arange(5, dtype='>i4'),
            'strided': np.arange(10.0)[::3],
            'f16': np.array([1.5, np.nan], dtype=np.float16),
            'c64': np.array([1 + 2j], dtype=np.complex64),
            'u32': np.array([2 ** 32 - 1], dtype=np.uint32),
            'read_only': np.frombuffer(b'abcd', dtype=np.uint8),
        },
        'np_scalars': [np.float64(1.25), np.int64(-4), np.bool_(False), np.float32(3.5)],
        'rng': np.random.default_rng(1).bit_generator.state,
        'torch_rng': torch.get_rng_state(),
    }
    assert_identical(state, round_trip(state))


def test_state_without_arrays_needs_no_tensor_file():
    doc, blob = encode_state({'step': 10, 'episode': [1, 2]})
    assert blob is None
    assert decode_state(doc, None) == {'step': 10, 'episode': [1, 2]}


@pytest.mark.parametrize('bad, where', [
    ({'a': {'b': object()}}, '/a/b'),
    ({'a': [np.array(['s'])]}, '/a/0'),
    ({(1, 2): 3}, 'dict key'),
    ({True: 1}, 'dict key'),
])
def test_unstorable_values_are_named(bad, where):
    with pytest.raises(TypeError, match=where):
        encode_state(bad)
