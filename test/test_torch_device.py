"""The `device` parameter of every torch node: auto, cpu, cuda, and a clear error."""
import pytest
import torch

from ami_nodes.torch_device import resolve_device


def test_auto_picks_cuda_exactly_when_present():
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto').type == expected
    assert resolve_device('cpu').type == 'cpu'


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="torch sees no CUDA GPU; use 'auto' or 'cpu'"):
        resolve_device('cuda')


def test_an_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match='expected one of'):
        resolve_device('tpu')
