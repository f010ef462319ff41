"""The batch objectives (objectives.py), the FIFO frame set, and a learning test on the world."""
import numpy as np
import pytest
import torch

from ami_nodes.perception.encoder import Encoder
from ami_nodes.perception.frame_set import FrameSet
from ami_nodes.perception.objectives import (
    INVERSE_DYNAMICS,
    OBJECTIVES,
    RECONSTRUCTION,
    RECONSTRUCTION_SIZE,
    BatchObjective,
    augment,
)
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig

torch.set_num_threads(1)
BATCH_OBJECTIVES = [name for name in OBJECTIVES if name != 'aux']
#: The objectives that compare two views' embeddings (reconstruction compares with pixels,
#: inverse dynamics with the actions).
VIEW_OBJECTIVES = [name for name in BATCH_OBJECTIVES if name not in (RECONSTRUCTION, INVERSE_DYNAMICS)]


def test_augment_shifts_and_jitters_within_range_and_is_seeded():
    images = torch.rand(5, 3, 84, 84)
    first = augment(images, torch.Generator().manual_seed(3), shift=6, brightness=0.2)
    again = augment(images, torch.Generator().manual_seed(3), shift=6, brightness=0.2)
    assert first.shape == images.shape and 0.0 <= first.min() and first.max() <= 1.0
    assert torch.equal(first, again)
    assert not torch.allclose(first, images)
    assert torch.equal(augment(images, torch.Generator(), shift=0, brightness=0.0), images)


@pytest.mark.parametrize('name', VIEW_OBJECTIVES)
def test_collapsed_features_are_not_a_minimum(name):
    """The same rows everywhere (collapse) must cost more than distinct rows that agree by view."""
    torch.manual_seed(0)
    objective = BatchObjective(name, feature_dim=16)
    spread = torch.randn(32, 16) * 3.0
    collapsed = torch.full((32, 16), 0.3)
    with torch.no_grad():
        spread_loss = objective(spread, spread + 0.01 * torch.randn(32, 16))[0]
        collapsed_loss = objective(collapsed, collapsed)[0]
    assert collapsed_loss > spread_loss


def test_reconstruction_uses_the_features_to_beat_the_mean_image():
    """Collapse cannot win: trained features give back eight distinct frames better than the
    best single image (their mean) could."""
    torch.manual_seed(0)
    images = torch.rand(8, 3, 84, 84)
    encoder, objective = Encoder(84, 16), BatchObjective(RECONSTRUCTION, feature_dim=16)
    optimiser = torch.optim.Adam([*encoder.parameters(), *objective.parameters()], lr=1e-3)
    for _ in range(150):
        features = encoder(images)
        loss = objective(features, features, images)[0]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    target = torch.nn.functional.adaptive_avg_pool2d(images, RECONSTRUCTION_SIZE).flatten(1)
    mean_image_error = (target - target.mean(0)).pow(2).mean()
    assert loss.item() < 0.5 * mean_image_error.item()
    with pytest.raises(ValueError):
        objective(features, features)


def test_inverse_dynamics_learns_which_way_the_view_turned():
    """frame_t is frame_{t-1} shifted 4 px one way or the other, as a turn shifts the view; the
    turn head's choice must become predictable from the two frames' features, the same shift
    must apply to both views, and a transition of unknown action must teach nothing."""
    torch.manual_seed(0)
    previous = torch.rand(16, 3, 84, 84)
    direction = torch.arange(16) % 2
    images = torch.stack([torch.roll(image, 4 if d else -4, dims=-1) for image, d in zip(previous, direction)])
    actions = torch.zeros(16, 5, dtype=torch.long)
    actions[:, 2] = 1 + direction
    encoder, objective = Encoder(84, 16), BatchObjective(INVERSE_DYNAMICS, feature_dim=16)
    first, second = objective.views(previous, torch.roll(previous, 4, dims=-1))
    assert torch.allclose(torch.roll(second, 4, dims=-1)[..., 12:-12], first[..., 12:-12])
    optimiser = torch.optim.Adam([*encoder.parameters(), *objective.parameters()], lr=1e-3)
    for _ in range(100):
        loss, terms, _ = objective(encoder(images), encoder(previous), actions=actions)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert terms['inverse_dynamics'] < 0.2   # chance for one head of three choices: ln 3 = 1.1
    unknown = actions.clone()
    unknown[:8] = -1
    assert (objective(encoder(images), encoder(previous), actions=unknown)[2][:8] == 0).all()
    with pytest.raises(ValueError):
        objective(encoder(images), encoder(previous))


@pytest.mark.parametrize('name', BATCH_OBJECTIVES)
def test_batch_objective_trains_after_the_frame_set_fills_and_round_trips(name):
    rng = np.random.default_rng(0)
    config = OnlinePerceptionConfig(feature_dim=16, objective=name, replay_batch=4, frame_set_size=8)
    perception = OnlinePerception(config)
    steps = [perception.step((rng.random((84, 84, 3)) * 255).astype(np.uint8), (0, 0, 1, 0, 0))
             for _ in range(6)]
    assert [s.trained for s in steps] == [False, False, False, True, True, True]
    assert 'total' in steps[-1].losses and len(perception.frame_set) == 5
    restored = OnlinePerception(config)
    restored.load_state_dict(perception.state_dict())
    for mine, theirs in zip(perception.objective.parameters(), restored.objective.parameters()):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError):
        OnlinePerception(OnlinePerceptionConfig(feature_dim=16)).load_state_dict(perception.state_dict())


def test_batch_objective_needs_a_batch_and_a_known_name():
    with pytest.raises(ValueError):
        OnlinePerception(OnlinePerceptionConfig(objective='vicreg', replay_batch=0))
    with pytest.raises(ValueError):
        OnlinePerception(OnlinePerceptionConfig(objective='no_such'))


def test_fifo_frame_set_replaces_the_oldest_whatever_the_loss():
    frames = FrameSet(capacity=3, image_size=2, policy='fifo')
    for index, loss in enumerate([5.0, 9.0, 7.0, 0.1, 0.2]):
        image = np.full((2, 2, 3), index, np.uint8)
        assert frames.offer(image, image, None, loss)
    assert sorted(frames.frames[:, 0, 0, 0].tolist()) == [2, 3, 4]
    with pytest.raises(ValueError):
        FrameSet(capacity=3, image_size=2, policy='newest')


#: The objective the learning test trains: the default, kept by docs/perception.md's numbers.
LEARNING_OBJECTIVE = 'aux'
LEARNING_FRAMES = 300


def test_objective_learns_pose_from_a_few_hundred_world_frames():
    """Trained on 300 frames of the built-in world (seed 0, sticky random actions), the encoder's
    features predict the pose of held-out frames better than the same encoder at init."""
    from ami_nodes.action_space import VelocityLimits
    from ami_nodes.eval.perception_probe import TICK_S, StickyRandomPolicy, drive, encode, held_out_set, probe_all
    from ami_nodes.perception.encoder import Encoder
    from ami_nodes.world.sim import World, WorldConfig

    torch.manual_seed(0)
    config = OnlinePerceptionConfig(objective=LEARNING_OBJECTIVE, seed=0)
    perception = OnlinePerception(config)
    random_init = Encoder(config.image_size, config.feature_dim)
    random_init.load_state_dict(perception.encoder_state())
    world, policy, limits = World(WorldConfig(seed=0)), StickyRandomPolicy(np.random.default_rng(0)), VelocityLimits()
    action = None
    for _ in range(LEARNING_FRAMES):
        perception.step(world.render(), action)
        action = policy()
        drive(world, action, limits)
        world.step(TICK_S)
    trained = Encoder(config.image_size, config.feature_dim)
    trained.load_state_dict(perception.encoder_state())
    frames, targets, labels = held_out_set(WorldConfig(seed=0), 800, seed=1000)
    probes = probe_all({'trained': encode(trained.eval(), frames),
                        'random_init': encode(random_init.eval(), frames)}, targets, labels)
    assert perception.train_steps >= LEARNING_FRAMES - 5
    assert probes['trained']['r2_mean'] > probes['random_init']['r2_mean'] + 0.02, probes


def test_minred_frame_set_evicts_the_most_redundant_entry():
    frames = FrameSet(capacity=3, image_size=2, policy='minred')
    for index, embedding in enumerate([[1.0, 0.0], [0.0, 1.0], [0.99, 0.1], [-1.0, 0.0]]):
        image = np.full((2, 2, 3), index, np.uint8)
        assert frames.offer(image, image, None, 0.0, np.array(embedding))
    # entries 0 and 2 are near duplicates: one of them made room for entry 3
    held = sorted(frames.frames[:, 0, 0, 0].tolist())
    assert held in ([0, 1, 3], [1, 2, 3])
