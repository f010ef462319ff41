"""Each auxiliary term on its own, and their combination."""
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.perception.aux_losses import (
    ACTION_ONE_HOT_DIM,
    RECONSTRUCTION_SIZE,
    AuxLoss,
    AuxLossConfig,
    LinearActionPredictor,
    Predictor,
    coherence_loss,
    contrastive_loss,
    covariance_loss,
    inverse_dynamics_loss,
    odometry_loss,
    odometry_targets,
    predictive_coding_loss,
    variance_loss,
)

torch.set_num_threads(1)


def test_predictive_coding_trains_predictor_and_encoder_side_but_not_the_past():
    predictor = Predictor(8)
    prev = torch.randn(1, 8, requires_grad=True)
    features = torch.randn(1, 8, requires_grad=True)
    prediction = predictor(prev.detach(), torch.zeros(1, ACTION_ONE_HOT_DIM))
    predictive_coding_loss(prediction, features).backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert all(p.grad is not None for p in predictor.parameters())
    assert prev.grad is None


@pytest.mark.parametrize('mode, context_moves, target_moves', [
    ('target', False, True), ('context', True, False), ('both', True, True)])
def test_predictive_gradient_picks_which_features_the_predictive_term_trains(mode, context_moves, target_moves):
    aux = AuxLoss(8, AuxLossConfig(loss_coherence=0.0, loss_variance=0.0, loss_covariance=0.0,
                                   loss_reconstruction=0.0, predictive_gradient=mode))
    prev = torch.randn(4, 8, requires_grad=True)
    features = torch.randn(4, 8, requires_grad=True)
    total, _ = aux(features, aux.predict(prev, None), prev, 0.0, torch.zeros(0, 8))
    total.backward()
    assert (prev.grad is not None and prev.grad.abs().sum() > 0) == context_moves
    assert (features.grad is not None and features.grad.abs().sum() > 0) == target_moves
    assert all(p.grad is not None for p in aux.predictor.parameters())


def test_linear_predictor_moves_the_features_by_each_chosen_actions_map():
    predictor = LinearActionPredictor(8)
    prev = torch.randn(3, 8)
    assert torch.equal(predictor(prev, torch.zeros(3, ACTION_ONE_HOT_DIM)), prev)  # unknown action: no change
    with torch.no_grad():
        predictor.maps.normal_()
        predictor.shifts.weight.normal_()
    action = torch.zeros(3, ACTION_ONE_HOT_DIM)
    action[:, [1, 4]] = 1.0
    expected = prev + prev @ (predictor.maps[1] + predictor.maps[4]).T + predictor.shifts.weight[:, [1, 4]].sum(dim=1)
    assert torch.allclose(predictor(prev, action), expected, atol=1e-5)
    aux = AuxLoss(8, AuxLossConfig(predictor='linear', predictive_gradient='target', loss_coherence=0.0,
                                   loss_variance=0.0, loss_covariance=0.0, loss_reconstruction=0.0))
    features = torch.randn(3, 8, requires_grad=True)
    total, _ = aux(features, aux.predict(prev, action), prev, 0.0, torch.zeros(0, 8))
    total.backward()
    assert features.grad.abs().sum() > 0 and aux.predictor.maps.grad[[1, 4]].abs().sum() > 0


def test_predictive_coding_is_zero_for_a_perfect_prediction():
    f = torch.randn(1, 8)
    assert predictive_coding_loss(f, f.clone()) == 0


def test_predictor_uses_the_action():
    predictor = Predictor(8)
    prev = torch.randn(1, 8)
    a, b = torch.zeros(1, ACTION_ONE_HOT_DIM), torch.zeros(1, ACTION_ONE_HOT_DIM)
    b[0, 1] = 1.0
    assert not torch.allclose(predictor(prev, a), predictor(prev, b))


def test_coherence_is_divided_by_one_plus_action_magnitude():
    f, prev = torch.ones(1, 4), torch.zeros(1, 4)
    still = coherence_loss(f, prev, 0.0)
    acting = coherence_loss(f, prev, 3.0)
    assert still == pytest.approx(1.0)
    assert acting == pytest.approx(0.25)


def test_coherence_does_not_push_the_previous_step():
    f = torch.ones(1, 4, requires_grad=True)
    prev = torch.zeros(1, 4, requires_grad=True)
    coherence_loss(f, prev, 0.0).backward()
    assert prev.grad is None and f.grad.abs().sum() > 0


def test_variance_hinge_zero_when_spread_and_positive_when_collapsed():
    spread = torch.randn(256, 8) * 3.0
    assert variance_loss(spread, target=1.0) == 0
    collapsed = torch.ones(256, 8)
    assert variance_loss(collapsed, target=1.0) > 0.9


def test_covariance_penalises_correlated_dimensions():
    torch.manual_seed(0)
    independent = torch.randn(2000, 4)
    base = torch.randn(2000, 1)
    correlated = base.repeat(1, 4)
    assert covariance_loss(independent) < 0.05
    assert covariance_loss(correlated) > 1.0


def test_contrastive_prefers_the_near_step():
    positive = torch.tensor([[1.0, 0.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    near = contrastive_loss(torch.tensor([[0.9, 0.1, 0.0]]), positive, negatives)
    far = contrastive_loss(torch.tensor([[0.1, 0.9, 0.0]]), positive, negatives)
    assert near < far


def _inputs(aux, d=8, n=20, action=True):
    history = torch.randn(n, d)
    prev = history[-1:]
    one_hot = torch.zeros(1, ACTION_ONE_HOT_DIM) if action else None
    return aux.predict(prev, one_hot), prev, history


def test_aux_loss_reports_only_enabled_terms():
    config = AuxLossConfig(loss_predictive=1.0, loss_coherence=0.0, loss_variance=1.0,
                           loss_covariance=0.0, loss_contrastive=0.5,
                           contrastive_gap=5)
    aux = AuxLoss(8, config)
    features = torch.randn(1, 8, requires_grad=True)
    prediction, prev, history = _inputs(aux)
    total, terms = aux(features, prediction, prev, 1.0, history)
    assert set(terms) == {'predictive', 'variance', 'contrastive'}
    expected = terms['predictive'] + terms['variance'] + 0.5 * terms['contrastive']
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    total.backward()
    assert features.grad.abs().sum() > 0


def test_unknown_action_predicts_with_zero_action():
    aux = AuxLoss(8)
    prev = torch.randn(1, 8)
    assert torch.equal(aux.predict(prev, None), aux.predict(prev, torch.zeros(1, ACTION_ONE_HOT_DIM)))


def test_contrastive_waits_for_enough_history():
    aux = AuxLoss(8, AuxLossConfig(loss_contrastive=1.0, contrastive_gap=10))
    prediction, prev, history = _inputs(aux, n=5)
    _, terms = aux(torch.randn(1, 8), prediction, prev, 0.0, history)
    assert 'contrastive' not in terms


def test_reconstruction_term_decodes_each_rows_frame_and_trains_the_features():
    aux = AuxLoss(8, AuxLossConfig(loss_predictive=0.0, loss_coherence=0.0, loss_variance=0.0,
                                   loss_covariance=0.0, loss_reconstruction=2.0))
    features = torch.randn(3, 8, requires_grad=True)
    images = torch.rand(3, 3, 84, 84)
    total, terms = aux(features, None, torch.randn(3, 8), 0.0, torch.zeros(0, 8), images=images)
    assert set(terms) == {'reconstruction'}
    decoded = torch.sigmoid(aux.heads['decoder'](features))
    target = torch.nn.functional.adaptive_avg_pool2d(images, RECONSTRUCTION_SIZE).flatten(1)
    assert terms['reconstruction'].item() == pytest.approx(((decoded - target) ** 2).mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(2.0 * terms['reconstruction'].item(), rel=1e-5)
    total.backward()
    assert features.grad.abs().sum() > 0


def test_inverse_dynamics_term_ignores_rows_with_an_unknown_action():
    known = torch.zeros(1, ACTION_ONE_HOT_DIM)
    for offset, size in zip((0, 3, 6, 9, 11), ACTION_DIMS):
        known[0, offset + size - 1] = 1.0
    logits = torch.randn(2, ACTION_ONE_HOT_DIM)
    with_unknown = inverse_dynamics_loss(logits, torch.cat([known, torch.zeros(1, ACTION_ONE_HOT_DIM)]))
    assert with_unknown.item() == pytest.approx(inverse_dynamics_loss(logits[:1], known).item(), rel=1e-6)
    assert inverse_dynamics_loss(logits, torch.zeros(2, ACTION_ONE_HOT_DIM)).item() == 0.0


def test_inverse_dynamics_term_pushes_the_live_features_only():
    aux = AuxLoss(8, AuxLossConfig(loss_predictive=0.0, loss_coherence=0.0, loss_variance=0.0,
                                   loss_covariance=0.0, loss_inverse_dynamics=1.0))
    features = torch.randn(2, 8, requires_grad=True)
    prev = torch.randn(2, 8, requires_grad=True)
    actions = torch.zeros(2, ACTION_ONE_HOT_DIM)
    actions[:, [0, 3, 6, 9, 11]] = 1.0
    total, terms = aux(features, None, prev, 0.0, torch.zeros(0, 8), action_one_hot=actions)
    assert set(terms) == {'inverse_dynamics'}
    total.backward()
    assert features.grad.abs().sum() > 0 and prev.grad is None


def test_heads_exist_only_for_terms_switched_on():
    assert set(AuxLoss(8, AuxLossConfig(loss_reconstruction=0.0)).heads) == set()
    assert set(AuxLoss(8).heads) == {'decoder'}
    assert set(AuxLoss(8, AuxLossConfig(loss_reconstruction=1.0, loss_inverse_dynamics=0.5)).heads) == {
        'decoder', 'inverse'}
    assert set(AuxLoss(8, AuxLossConfig(loss_reconstruction=0.0, projector_hidden=16)).heads) == {'projector'}


def test_projector_carries_the_predictive_and_anti_collapse_terms_but_not_the_decoder():
    aux = AuxLoss(8, AuxLossConfig(predictive_gradient='target', loss_coherence=0.0, loss_reconstruction=1.0,
                                   projector_hidden=16))
    history = torch.randn(20, 8)
    features = torch.randn(4, 8, requires_grad=True)
    images = torch.rand(4, 3, 84, 84)
    prediction = aux.predict(history[-4:], None)
    total, terms = aux(features, prediction, history[-4:], 0.0, history, images=images)
    embedded = aux.project(features)
    assert terms['predictive'].item() == pytest.approx(((prediction - embedded) ** 2).mean().item(), rel=1e-5)
    batch = torch.cat([aux.project(history), embedded])
    assert terms['variance'].item() == pytest.approx(variance_loss(batch).item(), rel=1e-5)
    decoded = torch.sigmoid(aux.heads['decoder'](features))
    target = torch.nn.functional.adaptive_avg_pool2d(images, RECONSTRUCTION_SIZE).flatten(1)
    assert terms['reconstruction'].item() == pytest.approx(((decoded - target) ** 2).mean().item(), rel=1e-5)
    total.backward()
    assert features.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aux.heads['projector'].parameters())


def test_with_context_the_previous_rows_carry_every_term_and_the_frames_features_none():
    aux = AuxLoss(8, AuxLossConfig(predictive_gradient='context', loss_reconstruction=1.0))
    prev = torch.randn(4, 8, requires_grad=True)
    features = torch.randn(4, 8, requires_grad=True)
    images = torch.rand(4, 3, 84, 84)
    total, terms = aux(features, aux.predict(prev, None), prev, 0.0, torch.randn(10, 8), images=images)
    assert {'predictive', 'coherence', 'variance', 'covariance', 'reconstruction'} <= set(terms)
    decoded = torch.sigmoid(aux.heads['decoder'](prev))
    target = torch.nn.functional.adaptive_avg_pool2d(images, RECONSTRUCTION_SIZE).flatten(1)
    assert terms['reconstruction'].item() == pytest.approx(((decoded - target) ** 2).mean().item(), rel=1e-5)
    total.backward()
    assert features.grad is None and prev.grad.abs().sum() > 0


def test_odometry_term_is_zero_when_the_read_out_moves_as_the_robot_moved_wherever_odometry_began():
    poses = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.5], [-3.0, 1.0, 3.0]])
    ticks = torch.tensor([10, 20, 30])
    readout = odometry_targets(poses) + torch.tensor([5.0, -2.0, 0.3, 0.1])   # another origin
    assert odometry_loss(readout, poses, ticks, horizon=0) == pytest.approx(0.0, abs=1e-10)
    wrong = readout.clone()
    wrong[1, 0] += 1.0
    assert odometry_loss(wrong, poses, ticks, horizon=0) > 0.5


def test_odometry_term_counts_only_known_poses_within_the_horizon():
    poses = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [float('nan')] * 3, [2.0, 0.0, 0.0]])
    ticks = torch.tensor([0, 5, 6, 500])
    readout = torch.zeros(4, 4, requires_grad=True)
    assert odometry_loss(readout, poses, ticks, horizon=0) is not None
    near = odometry_loss(readout, poses, ticks, horizon=10)   # only (0, 1): 0.25 m along x over 4 m
    assert near.item() == pytest.approx((1.0 / 4.0) ** 2)
    near.backward()
    assert readout.grad[[0, 1]].abs().sum() > 0 and readout.grad[[2, 3]].abs().sum() == 0
    assert odometry_loss(readout, poses[2:3], ticks[2:3], horizon=0) is None


def test_odometry_term_trains_the_trained_rows_through_a_linear_read_out():
    loss = AuxLoss(8, AuxLossConfig(loss_reconstruction=0.0, loss_odometry=1.0, odometry_hidden=0))
    assert set(loss.heads) == {'odometry'}
    features, prev = torch.randn(3, 8), torch.randn(3, 8, requires_grad=True)   # context: prev trains
    poses = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.1], [2.0, 1.0, 0.2]])
    total, terms = loss(features, loss.predict(prev, None), prev, 0.0, torch.randn(4, 8),
                        poses=poses, ticks=torch.arange(3))
    assert 'odometry' in terms
    total.backward()
    assert loss.heads['odometry'].weight.grad.abs().sum() > 0 and prev.grad.abs().sum() > 0
    _, without = loss(features, loss.predict(prev, None), prev, 0.0, torch.randn(4, 8))
    assert 'odometry' not in without


def test_odometry_term_reads_the_features_through_an_mlp_by_default():
    loss = AuxLoss(8, AuxLossConfig(loss_reconstruction=0.0, loss_odometry=1.0))
    assert isinstance(loss.heads['odometry'], torch.nn.Sequential)
    features, prev = torch.randn(3, 8), torch.randn(3, 8, requires_grad=True)
    poses = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.1], [2.0, 1.0, 0.2]])
    total, terms = loss(features, loss.predict(prev, None), prev, 0.0, torch.randn(4, 8),
                        poses=poses, ticks=torch.arange(3))
    assert terms['odometry'] > 0
    total.backward()
    assert loss.heads['odometry'][0].weight.grad.abs().sum() > 0 and prev.grad.abs().sum() > 0
