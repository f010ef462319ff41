"""Encoder shapes across input sizes and the frame conversion."""
import numpy as np
import pytest
import torch

from ami_nodes.perception.encoder import Encoder, frame_to_tensor

torch.set_num_threads(1)


@pytest.mark.parametrize('size', [84, 128, 256])
def test_encoder_output_shape_for_each_input_size(size):
    encoder = Encoder(image_size=size, feature_dim=32)
    out = encoder(torch.rand(2, 3, size, size))
    assert out.shape == (2, 32)
    assert torch.isfinite(out).all()


def test_same_weights_run_on_other_sizes():
    encoder = Encoder(84, 64)
    assert encoder(torch.rand(1, 3, 128, 128)).shape == (1, 64)


def test_too_small_image_size_is_refused():
    with pytest.raises(ValueError):
        Encoder(image_size=16)


def test_frame_to_tensor_layout_and_range():
    frame = np.zeros((84, 90, 3), dtype=np.uint8)
    frame[0, 1] = (255, 0, 51)
    tensor = frame_to_tensor(frame, 'cpu')
    assert tensor.shape == (1, 3, 84, 90) and tensor.dtype == torch.float32
    assert tensor[0, :, 0, 1].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0


def test_frame_to_tensor_rejects_float_frames():
    with pytest.raises(ValueError):
        frame_to_tensor(np.zeros((84, 84, 3), dtype=np.float32))
