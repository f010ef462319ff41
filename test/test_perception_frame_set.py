"""The loss-prioritised frame set keeps the hardest transitions."""
import numpy as np
import torch

from ami_nodes.perception.frame_set import UNKNOWN_ACTION, FrameSet


def _frame(value):
    return np.full((36, 36, 3), value, np.uint8)


def test_fills_then_replaces_only_the_easiest_with_a_harder_one():
    frames = FrameSet(capacity=3, image_size=36)
    for value, loss in ((1, 0.5), (2, 0.1), (3, 0.9)):
        assert frames.offer(_frame(value - 1), _frame(value), (0, 0, 0, 0, 0), loss)
    assert not frames.offer(_frame(0), _frame(4), None, 0.05)  # easier than everything held
    assert frames.offer(_frame(0), _frame(5), None, 0.3)       # beats the 0.1 entry
    assert sorted(frames.frames[:, 0, 0, 0].tolist()) == [1, 3, 5]
    assert frames.actions[frames.frames[:, 0, 0, 0] == 5][0, 0] == UNKNOWN_ACTION


def test_sample_and_update_losses():
    frames = FrameSet(capacity=4, image_size=36)
    for value in range(4):
        frames.offer(_frame(value), _frame(value), (1, 0, 0, 0, 0), 1.0)
    indices = frames.sample(3)
    assert len(set(indices.tolist())) == 3
    frames.update_losses(indices, np.zeros(3))
    assert frames.losses.sum() == 1.0


def test_state_round_trip():
    frames = FrameSet(capacity=4, image_size=36)
    frames.offer(_frame(1), _frame(2), (1, 2, 0, 1, 0), 0.7)
    state = frames.state_dict()
    assert all(isinstance(v, (int, torch.Tensor)) for v in state.values())
    other = FrameSet(capacity=4, image_size=36)
    other.load_state_dict(state)
    assert len(other) == 1 and other.losses[0] == 0.7 and other.actions[0].tolist() == [1, 2, 0, 1, 0]
