"""OnlinePerception on a tiny synthetic stream: a camera panning over a striped panorama."""
import copy

import numpy as np
import pytest
import torch

from ami_nodes.perception.aux_losses import AuxLossConfig
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig

torch.set_num_threads(1)


class Panorama:
    """Turning left/right (head 2) pans an 84-pixel window over random coloured stripes."""

    def __init__(self, seed: int = 0, size: int = 84) -> None:
        rng = np.random.default_rng(seed)
        stripes = (rng.random((1, 80, 3)) * 255).astype(np.uint8)
        self.image = np.repeat(np.repeat(stripes, 6, axis=1), size, axis=0)
        self.size = size
        self.x = 0
        self.rng = rng

    def step(self) -> tuple[np.ndarray, tuple[int, ...]]:
        action = (0, 0, int(self.rng.integers(0, 3)), 0, 0)
        self.x = (self.x + {0: 0, 1: 5, 2: -5}[action[2]]) % (self.image.shape[1] - self.size)
        return self.image[:, self.x:self.x + self.size].copy(), action


def _run(perception, steps, seed=0):
    world = Panorama(seed)
    return [perception.step(*world.step()) for _ in range(steps)]


def test_step_output_and_flow():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=16, replay_batch=0))
    first, second = _run(perception, 2)
    assert first.features.dtype == np.float32 and first.features.shape == (16,)
    assert not first.trained and first.losses == {}
    assert second.trained
    assert {'predictive', 'coherence', 'variance', 'covariance', 'total'} <= set(second.losses)
    assert second.step_time_s > 0 and second.train_every == 1


def test_training_changes_the_encoder_and_publishes_pre_step_features():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=16, replay_batch=0))
    world = Panorama()
    perception.step(*world.step())
    frame, action = world.step()
    before = perception.encoder(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255).detach()
    out = perception.step(frame, action)
    np.testing.assert_allclose(out.features, before[0].numpy(), rtol=1e-5, atol=1e-6)
    after = perception.encoder(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255).detach()
    assert not torch.allclose(before, after)


def test_train_every_k_frames():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, train_every=3, replay_batch=0))
    trained = [s.trained for s in _run(perception, 10)]
    assert trained == [False, False, True, False, False, True, False, False, True, False]
    assert perception.train_steps == 3
    assert 'total' in _run(perception, 1)[0].losses  # forward-only frames still report the loss


def test_missing_action_degrades_to_action_free_loss():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=0))
    world = Panorama()
    perception.step(world.step()[0], None)
    out = perception.step(world.step()[0], None)
    assert out.trained and np.isfinite(out.losses['total'])


def test_wrong_sized_frames_are_resized():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=0))
    assert perception.step(np.zeros((120, 160, 3), np.uint8)).features.shape == (8,)


def test_budget_mode_raises_train_every_under_a_tiny_budget():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, budget_s=1e-5, max_train_every=8,
                                                         replay_batch=0))
    steps = _run(perception, 12)
    assert steps[-1].train_every == 8


def test_ema_encoder_is_published_and_lags():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, ema_decay=0.9, replay_batch=0))
    _run(perception, 5)
    ema = perception.encoder_state()
    online = perception.encoder.state_dict()
    assert set(ema) == set(online)
    assert not torch.allclose(ema['head.weight'], online['head.weight'])


def _assert_plain(value):
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, (str, int))
            _assert_plain(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _assert_plain(item)
    else:
        assert value is None or isinstance(value, (torch.Tensor, int, float, str, bool)), type(value)


def test_state_dict_round_trip_resumes_identically():
    config = OnlinePerceptionConfig(feature_dim=8, ema_decay=0.5, replay_batch=2, frame_set_size=4)
    original = OnlinePerception(config)
    _run(original, 6)
    state = original.state_dict()
    _assert_plain(state)
    assert {'encoder', 'predictor', 'ema_encoder', 'optimizer', 'counters', 'history', 'budget',
            'frame_set'} <= set(state)
    restored_state = copy.deepcopy(state)
    restored = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, ema_decay=0.5, replay_batch=2, frame_set_size=4,
                                                          seed=99))
    restored.load_state_dict(restored_state)
    restored.frame_set.rng = np.random.default_rng(1)
    original.frame_set.rng = np.random.default_rng(1)
    frame = np.full((84, 84, 3), 77, np.uint8)
    a = original.step(frame, (1, 0, 0, 0, 0))
    b = restored.step(frame, (1, 0, 0, 0, 0))
    np.testing.assert_allclose(a.features, b.features, rtol=1e-6)
    assert a.losses['total'] == pytest.approx(b.losses['total'], rel=1e-5)
    assert restored.frames == original.frames and restored.train_steps == original.train_steps


def test_state_from_another_shape_is_refused():
    state = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=0)).state_dict()
    with pytest.raises(ValueError):
        OnlinePerception(OnlinePerceptionConfig(feature_dim=16, replay_batch=0)).load_state_dict(state)


def test_state_saved_with_the_other_predictor_resumes_its_encoder_with_a_new_predictor():
    mlp = OnlinePerceptionConfig(feature_dim=8, replay_batch=0, aux=AuxLossConfig(predictor='mlp'))
    original = OnlinePerception(mlp)
    _run(original, 6)
    linear = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=0,
                                                     aux=AuxLossConfig(predictor='linear')))
    linear.load_state_dict(original.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(original.encoder.parameters(), linear.encoder.parameters()))
    assert not linear.aux.predictor.maps.any() and linear.frames == original.frames
    assert np.isfinite(linear.step(np.full((84, 84, 3), 90, np.uint8), (1, 0, 0, 0, 0)).losses['total'])


def test_projected_state_resumes_with_its_projector():
    config = OnlinePerceptionConfig(feature_dim=8, replay_batch=4, aux=AuxLossConfig(projector_hidden=16))
    original = OnlinePerception(config)
    _run(original, 12)
    restored = OnlinePerception(copy.deepcopy(config))
    restored.load_state_dict(original.state_dict())
    for a, b in zip(original.aux.heads['projector'].parameters(), restored.aux.heads['projector'].parameters()):
        assert torch.equal(a, b)
    frame = np.full((84, 84, 3), 90, np.uint8)
    assert np.array_equal(original.step(frame).features, restored.step(frame).features)


def test_preview_and_stats():
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=0))
    steps = _run(perception, 20)
    image = perception.preview_image(np.zeros((84, 84, 3), np.uint8))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image[:, 168:].any()  # the feature strips are drawn
    stats = perception.feature_stats(10)
    assert stats['count'] == 10 and stats['std'] > 0
    assert len(steps) == 20


def test_collapsed_encoder_is_not_a_minimum_of_the_total_loss():
    """Start with every output equal; optimising the aux loss must spread the features."""
    config = OnlinePerceptionConfig(feature_dim=16, learning_rate=1e-3, replay_batch=0,
                                    aux=AuxLossConfig())
    perception = OnlinePerception(config)
    with torch.no_grad():
        perception.encoder.head.weight.zero_()
        perception.encoder.head.bias.fill_(0.3)
    collapsed = _run(perception, 40)
    start = np.stack([s.features for s in collapsed[:2]])  # published before any optimiser step
    assert np.abs(start - 0.3).max() < 1e-6
    _run(perception, 260, seed=1)
    stats = perception.feature_stats(100)
    assert stats['std'] > 0.1
    assert stats['effective_rank'] > 1.5  # batch-1 online training spreads few directions; see docs


def test_without_anti_collapse_terms_nothing_spreads_a_collapsed_encoder():
    """The control for the test above: coherence alone keeps a collapsed encoder collapsed."""
    config = OnlinePerceptionConfig(feature_dim=16, learning_rate=1e-3, replay_batch=0,
                                    aux=AuxLossConfig(loss_predictive=0.0, loss_coherence=1.0,
                                                      loss_variance=0.0, loss_covariance=0.0,
                                                      loss_reconstruction=0.0))
    perception = OnlinePerception(config)
    with torch.no_grad():
        perception.encoder.head.weight.zero_()
        perception.encoder.head.bias.fill_(0.3)
    _run(perception, 100)
    assert perception.feature_stats(50)['std'] < 1e-4


@pytest.mark.parametrize('predictive_gradient', ['target', 'context'])
def test_replay_adds_frame_set_rows_to_training_steps(predictive_gradient):
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=4, frame_set_size=8,
                                                         aux=AuxLossConfig(predictive_gradient=predictive_gradient)))
    steps = _run(perception, 12)
    assert len(perception.frame_set) == 8  # every transition after the first is offered until full
    assert all(np.isfinite(s.losses['total']) for s in steps[1:])
    perception.step(np.zeros((84, 84, 3), np.uint8), None)  # unknown actions are stored and replayed too
    assert np.isfinite(perception.step(np.zeros((84, 84, 3), np.uint8), None).losses['total'])


@pytest.mark.parametrize('predictive_gradient, live_with_grad, rows_with_grad', [
    ('target', 1, 1 + 4), ('context', 0, 1 + 4), ('both', 1, 2 * (1 + 4))])
def test_context_training_encodes_as_many_images_with_gradients_as_target(
        predictive_gradient, live_with_grad, rows_with_grad):
    perception = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=4, frame_set_size=8,
                                                         aux=AuxLossConfig(predictive_gradient=predictive_gradient)))
    _run(perception, 10)  # the frame set holds enough to replay
    encoded: list[tuple[int, bool]] = []
    perception.encoder.register_forward_hook(lambda _m, inputs, _o: encoded.append(
        (inputs[0].shape[0], torch.is_grad_enabled())))
    published_with_grad = []
    step = perception.step(np.full((84, 84, 3), 60, np.uint8), (1, 0, 0, 0, 0),
                           on_features=lambda _f: published_with_grad.append(encoded[0][1]))
    assert step.trained and published_with_grad == [bool(live_with_grad)]
    assert sum(rows for rows, grad in encoded if grad) == rows_with_grad


def test_learning_rate_is_held_then_decays_as_inverse_square_root_down_to_its_floor():
    config = OnlinePerceptionConfig(feature_dim=8, replay_batch=0, learning_rate=4e-4, lr_decay_steps=10,
                                    min_learning_rate=1e-4)
    perception = OnlinePerception(config)
    _run(perception, 11)   # 10 training steps
    assert perception.optimizer.param_groups[0]['lr'] == pytest.approx(4e-4)
    _run(perception, 30)   # 40 training steps
    assert perception.optimizer.param_groups[0]['lr'] == pytest.approx(4e-4 * np.sqrt(10 / 39))
    assert perception.current_learning_rate == pytest.approx(2e-4)   # 4e-4 * sqrt(10 / 40)
    perception.train_steps = 10_000
    assert perception.current_learning_rate == pytest.approx(1e-4)
    perception.update_setting('lr_decay_steps', 0)
    assert perception.current_learning_rate == pytest.approx(4e-4)


def test_reconstruction_and_inverse_dynamics_heads_train_and_resume():
    aux = AuxLossConfig(loss_reconstruction=10.0, loss_inverse_dynamics=0.3)
    config = OnlinePerceptionConfig(feature_dim=8, replay_batch=2, frame_set_size=4, aux=aux)
    original = OnlinePerception(config)
    before = copy.deepcopy(original.aux.heads.state_dict())
    steps = _run(original, 8)
    assert {'reconstruction', 'inverse_dynamics'} <= set(steps[-1].losses)
    after = original.state_dict()
    assert all(not torch.equal(before[key], after['aux_heads'][key]) for key in before)
    restored = OnlinePerception(OnlinePerceptionConfig(feature_dim=8, replay_batch=2, frame_set_size=4,
                                                       aux=copy.deepcopy(aux)))
    restored.load_state_dict(copy.deepcopy(after))
    assert all(torch.equal(value, restored.aux.heads.state_dict()[key]) for key, value in after['aux_heads'].items())



def test_a_state_saved_without_a_head_resumes_with_that_head_switched_on():
    config = OnlinePerceptionConfig(feature_dim=8, replay_batch=2, frame_set_size=4,
                                    aux=AuxLossConfig(loss_reconstruction=0.0))
    original = OnlinePerception(config)
    _run(original, 6)
    state = copy.deepcopy(original.state_dict())
    switched_on = OnlinePerception(OnlinePerceptionConfig(
        feature_dim=8, replay_batch=2, frame_set_size=4, aux=AuxLossConfig(loss_reconstruction=10.0)))
    fresh_decoder = copy.deepcopy(switched_on.aux.heads.state_dict())
    switched_on.load_state_dict(state)
    assert all(torch.equal(value, switched_on.encoder.state_dict()[key]) for key, value in state['encoder'].items())
    assert all(torch.equal(value, switched_on.aux.heads.state_dict()[key]) for key, value in fresh_decoder.items())
    assert switched_on.train_steps == original.train_steps
    step = switched_on.step(np.full((84, 84, 3), 77, np.uint8), (1, 0, 0, 0, 0))
    assert step.trained and 'reconstruction' in step.losses
    switched_off = OnlinePerception(config)
    switched_off.load_state_dict(copy.deepcopy(switched_on.state_dict()))
    assert switched_off.step(np.full((84, 84, 3), 70, np.uint8), (0, 0, 0, 0, 0)).trained


def test_odometry_term_trains_on_poses_and_a_resumed_perception_forgets_the_old_sessions_poses():
    config = OnlinePerceptionConfig(feature_dim=8, replay_batch=2, frame_set_size=4,
                                    aux=AuxLossConfig(loss_reconstruction=0.0, loss_odometry=1.0))
    perception, world = OnlinePerception(config), Panorama(0)
    steps = [perception.step(*world.step(), pose=(0.1 * i, 0.0, 0.05 * i)) for i in range(8)]
    assert 'odometry' in steps[-1].losses
    assert not np.isnan(perception.frame_set.poses[:len(perception.frame_set)]).any()
    resumed = OnlinePerception(copy.deepcopy(config))
    resumed.load_state_dict(copy.deepcopy(perception.state_dict()))
    assert np.isnan(resumed.frame_set.poses).all()   # another session's origin: not comparable
    assert 'odometry' not in resumed.step(*world.step(), pose=(5.0, 5.0, 0.0)).losses
    later = [resumed.step(*world.step(), pose=(5.0 + 0.1 * i, 5.0, 0.0)).losses for i in range(1, 7)]
    assert any('odometry' in losses for losses in later)   # once two rows hold poses of this session


def test_a_state_saved_with_a_linear_odometry_read_out_resumes_with_an_mlp_one():
    def config(hidden: int) -> OnlinePerceptionConfig:
        return OnlinePerceptionConfig(feature_dim=8, replay_batch=2, frame_set_size=4, aux=AuxLossConfig(
            loss_reconstruction=0.0, loss_odometry=1.0, odometry_hidden=hidden))

    linear, world = OnlinePerception(config(0)), Panorama(0)
    for i in range(6):
        linear.step(*world.step(), pose=(0.1 * i, 0.0, 0.0))
    mlp = OnlinePerception(config(16))
    fresh_read_out = copy.deepcopy(mlp.aux.heads.state_dict())
    mlp.load_state_dict(copy.deepcopy(linear.state_dict()))
    assert all(torch.equal(value, mlp.encoder.state_dict()[key]) for key, value in linear.encoder.state_dict().items())
    assert all(torch.equal(value, mlp.aux.heads.state_dict()[key]) for key, value in fresh_read_out.items())
    later = [mlp.step(*world.step(), pose=(0.1 * i, 0.0, 0.0)).losses for i in range(6)]
    assert any('odometry' in losses for losses in later)
    wider = OnlinePerception(config(32))   # same head, another width: also starts afresh
    wider.load_state_dict(copy.deepcopy(mlp.state_dict()))
    assert wider.step(*world.step(), pose=(0.0, 0.0, 0.0)).trained
