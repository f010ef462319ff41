"""The in-process exploration harness and the evaluation's statistics (no ROS)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ami_nodes.eval import harness
from ami_nodes.learning.holds import StickyRandom
from ami_nodes.learning.learner import LearnerConfig
from ami_nodes.world.sim import WorldConfig


def test_sticky_holds_each_action_for_a_duration_in_range():
    sticky = StickyRandom(np.random.default_rng(0), harness.STICKY_MIN_S, harness.STICKY_MAX_S)
    dt, actions = 0.05, []
    for tick in range(4000):   # as the harness calls it: simulated time in ns
        actions.append(sticky(round(tick * dt * 1e9)))
    holds, run = [], 1
    for previous, current in zip(actions, actions[1:]):
        if current == previous:
            run += 1
        else:
            holds.append(run * dt)
            run = 1
    # a hold can only look longer when two draws in a row give the same action (1 in 108)
    assert min(holds) >= harness.STICKY_MIN_S - 1e-9
    assert sum(h > harness.STICKY_MAX_S + dt for h in holds) <= 0.05 * len(holds)
    assert np.mean(holds) == pytest.approx((harness.STICKY_MIN_S + harness.STICKY_MAX_S) / 2, rel=0.15)
    assert len(set(actions)) > 50   # the actions themselves are spread over the 108


@pytest.mark.parametrize('policy', harness.POLICIES)
def test_a_short_run_reports_coverage_and_the_noisy_tv(policy):
    config = harness.HarnessConfig(policy=policy, seed=1, minutes=2.0 / 60.0, layout='classic', noisy_tv=True,
                                   learner=LearnerConfig(min_new_samples=16, intrinsic_reward='elliptical'),
                                   rollout_length=16)
    result = harness.run(config)
    assert result['free_cells'] > 0 and 0.0 < result['coverage'] <= 1.0
    assert len(result['curve']) == 0 or result['curve'][-1][1] <= result['coverage']
    assert 0.0 <= result['noisy_tv_view_fraction'] <= 1.0
    assert (result['updates'] > 0) == (policy == 'curious')
    again = harness.run(config)
    assert again['coverage'] == result['coverage']   # deterministic under the seed


def test_the_place_bandit_learns_to_run_and_out_explores_sticky():
    """policy_node's held_bandit, in the harness: in 3 simulated minutes on the rooms layout
    it settles on running, and by then has covered more than sticky on each of seeds 0-2."""
    for seed in (0, 1, 2):
        bandit = harness.run(harness.HarnessConfig(policy='place_bandit', seed=seed, minutes=3.0))
        sticky = harness.run(harness.HarnessConfig(policy='sticky', seed=seed, minutes=3.0))
        assert bandit['late_action_share']['run']['run'] >= 0.9, (seed, bandit['late_action_share'])
        assert bandit['coverage'] > sticky['coverage'], (seed, bandit['coverage'], sticky['coverage'])


def test_held_out_seeds_are_refused_unless_asked():
    with pytest.raises(SystemExit):
        harness.parse_args(['--seeds', '3', '100'])
    assert harness.parse_args(['--seeds', '100', '--held-out']).seeds == [100]


def test_coverage_protocol_on_the_harness_writes_the_issues_keys(tmp_path):
    from ami_nodes.eval import curiosity_coverage
    report = curiosity_coverage.main(['--harness', '--seeds', '0', '1', '--minutes', '0.1', '--layout', 'rooms',
                                      '--noisy-tv', '--out', str(tmp_path)])
    import json
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert {'minutes', 'layout', 'seeds', 'coverage', 'noisy_tv_view_fraction'} <= saved.keys()
    assert saved['minutes'] == 0.1 and saved['layout'] == 'rooms+noisy_tv' and saved['seeds'] == [0, 1]
    for key in ('coverage', 'noisy_tv_view_fraction'):
        assert set(saved[key]) == {'curious', 'uniform', 'sticky'}
        assert all(len(values) == 2 for values in saved[key].values())
    assert saved['coverage'] == report['coverage']
    assert (tmp_path / 'coverage.png').stat().st_size > 0
    assert 'in-process harness' in (tmp_path / 'summary.md').read_text().lower()

    # a report can take a policy's runs from an earlier one of the same protocol, and says so
    earlier = tmp_path / 'results.json'
    merged = curiosity_coverage.main(['--harness', '--policies', '--seeds', '1', '--minutes', '0.1',
                                      '--layout', 'rooms', '--noisy-tv',
                                      '--reuse', f'sticky={earlier}', f'curious={earlier}',
                                      '--out', str(tmp_path / 'merged')])
    assert list(merged['coverage']) == ['curious', 'sticky']
    assert merged['coverage']['sticky'] == report['coverage']['sticky'][1:]
    assert merged['reused']['curious']['command'] == report['command']
    assert f'Runs of `sticky` taken from `{earlier}`' in (tmp_path / 'merged' / 'summary.md').read_text()
    with pytest.raises(SystemExit):   # another protocol's runs are refused
        curiosity_coverage.main(['--harness', '--policies', '--seeds', '0', '--minutes', '0.1', '--layout', 'rooms',
                                 '--reuse', f'sticky={earlier}', '--out', str(tmp_path / 'refused')])


def test_interval_and_coverage_lookup():
    from ami_nodes.eval.curiosity_coverage import coverage_at, mean_and_interval
    mean, half = mean_and_interval([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and half == pytest.approx(4.303 * 0.2 / math.sqrt(3))
    assert mean_and_interval([0.5]) == (0.5, 0.0)
    curve = [(5.0, 0.1), (10.0, 0.2), (15.0, 0.3)]
    assert coverage_at(curve, 12.0) == 0.2 and coverage_at(curve, 15.0) == 0.3 and coverage_at(curve, 1.0) == 0.0


def test_downstream_reward_per_minute_and_its_summary():
    from ami_nodes.eval.downstream import reward_per_minute, summary_markdown
    # 5 s samples: 2 touches a minute until minute 5, then 6 a minute
    curve = [(t, 2 * min(t, 300) / 60 + 6 * max(t - 300, 0) / 60) for t in range(0, 901, 5)]
    assert reward_per_minute(curve, (5.0, 15.0)) == pytest.approx(6.0)
    assert reward_per_minute(curve, (0.0, 5.0)) == pytest.approx(2.0)
    text = summary_markdown({'command': 'c', 'smoke': False, 'seeds': [0, 1],
                             'window_minutes': [5.0, 15.0], 'minutes': 15.0,
                             'reward_per_minute': {'online': [6.0, 4.0], 'frozen': [1.0, 1.0]}})
    assert '| online | 5.000 |' in text and '| frozen | 1.000 | ±0.000 |' in text
    assert 'Paired difference online - frozen: +4.000 ±' in text and 'online ahead on 2 of 2 seeds' in text
    assert 'replay' not in text
    text = summary_markdown({'command': 'c', 'smoke': False, 'harness': True, 'seeds': [0],
                             'window_minutes': [5.0, 15.0], 'minutes': 15.0,
                             'learner': 'branching_q', 'q_replay': 'frames',
                             'reward_per_minute': {'online': [6.0], 'frozen': [1.0]}})
    assert 'Learner: branching_q, its replay keeping frames.' in text
    text = summary_markdown({'command': 'c', 'smoke': False, 'seeds': [0], 'window_minutes': [5.0, 15.0],
                             'minutes': 15.0, 'reward_per_minute': {'online': [6.0], 'frozen': [1.0]},
                             'runs': [{'mode': 'online', 'seed': 0, 'exit_code': 0, 'final_checkpoint': {
                                 'perception_frames': 200, 'perception_train_steps': 150, 'learner_updates': 9,
                                 'q_decisions': 40, 'missing_observations': 1, 'chain_breaks': 0}}]})
    assert '| online seed 0 | 0 | 150 of 200 (75.0%) | 9 | 40 | 1 | 0 |' in text


def test_the_oracle_reward_pays_the_cells_each_step_found_first():
    def run(oracle: bool) -> dict:
        return harness.run(harness.HarnessConfig(
            policy='curious', seed=0, minutes=1.0, layout='classic', hold_s=(0.25, 2.0), rollout_length=16,
            oracle_reward=oracle, learner=LearnerConfig(min_new_samples=16)))
    paid = [row['extrinsic_reward_mean'] for row in run(True)['learner']]
    assert paid and max(paid) > 0.0   # a walk of a minute finds new cells
    assert all(row['extrinsic_reward_mean'] == 0.0 for row in run(False)['learner'])


def test_reward_alignment_records_every_hold_with_its_ground_truth():
    from ami_nodes.eval import reward_alignment
    holds = reward_alignment.record_holds(seed=0, minutes=0.5, layout='classic')
    count = len(holds['action'])
    assert count > 10 and all(len(holds[name]) == count for name in (*reward_alignment.REWARDS, 'new_cells'))
    assert holds['new_cells'].min() >= 0 and 0 < holds['new_cells'].sum() <= 69   # the classic map's free cells
    world = WorldConfig()
    fastest = world.walk_speed * world.run_multiplier * math.sqrt(2)   # running diagonally
    assert holds['distance'].max() <= fastest * (harness.STICKY_MAX_S + 0.1)
    report = reward_alignment.alignment(holds)
    assert sum(group['holds'] for group in report['groups'].values()) <= count
    assert all(-1.0 <= reward['corr_new_cells'] <= 1.0 for reward in report['rewards'].values())


@pytest.mark.parametrize('train_perception', [True, False])
def test_the_target_task_pays_the_learner_each_touch(train_perception):
    """Issue 10's downstream task in the harness: each target touched is one unit of extrinsic
    reward in the learner's experience; a frozen encoder never trains."""
    config = harness.HarnessConfig(policy='curious', seed=0, minutes=1.0, layout='classic', targets=8,
                                   train_perception=train_perception, rollout_length=32,
                                   learner=LearnerConfig(min_new_samples=32, intrinsic_weight=0.0,
                                                         extrinsic_weight=1.0))
    result = harness.run(config)
    assert result['touches'] > 0
    # paid at the decision after each touch: all but a touch in the very last tick
    assert result['touches'] - 1 <= result['extrinsic_reward_paid'] <= result['touches']
    assert [touches for _, touches in result['touch_curve']] == sorted(t for _, t in result['touch_curve'])
    assert (result['perception_train_steps'] > 0) == train_perception
    with pytest.raises(ValueError, match='choose one'):
        harness.run(harness.HarnessConfig(policy='curious', targets=8, oracle_reward=True, minutes=0.01))


def test_branching_q_is_paid_each_touch_and_trains_from_replay():
    """The replay Q-learner in the harness: a decision every 5 ticks, paid the touches since the
    last one; after its warm-up it trains at every decision."""
    config = harness.HarnessConfig(policy='branching_q', seed=0, minutes=1.0, layout='classic', targets=8,
                                   action_repeat=5)
    result = harness.run(config)
    assert result['touches'] > 0
    assert result['touches'] - 1 <= result['extrinsic_reward_paid'] <= result['touches']
    decisions = 1.0 * 60 * 20 // 5
    warmup = config.branching_q.q_warmup_decisions
    assert result['updates'] == (decisions - warmup) * config.branching_q.q_updates_per_decision
    assert harness.run(config)['touches'] == result['touches']   # deterministic under the seed


def test_the_harness_refuses_an_unknown_perception_setting():
    with pytest.raises(ValueError, match='no_such_setting'):
        harness.run(harness.HarnessConfig(policy='branching_q', minutes=0.01, perception={'no_such_setting': 1}))


def test_branching_q_refuses_an_unknown_replay():
    with pytest.raises(ValueError, match='q_replay'):
        harness.run(harness.HarnessConfig(policy='branching_q', minutes=0.01, q_replay='pixels'))


def test_downstream_live_runs_the_task_config_with_either_learner(tmp_path):
    from ami_nodes.eval import downstream

    def params(path):
        config = yaml.safe_load(path.read_text())
        return {section: values['ros__parameters'] for section, values in config.items()}
    q = params(downstream.task_config(tmp_path / 'q', 'frozen', 3, 8))
    assert q['/**']['algorithm'] == 'branching_q' and q['policy_node']['action_mode'] == 'epsilon_greedy'
    assert q['perception_node']['train_online'] is False and q['ami_world']['seed'] == 3
    assert q['ami_world']['targets'] == 8 and q['learner_node']['extrinsic_weight'] == 1.0
    ppo = params(downstream.task_config(tmp_path / 'ppo', 'online', 3, 8, {'intrinsic_weight': 0.0}, 'ppo'))
    assert ppo['/**']['algorithm'] == 'ppo' and ppo['policy_node']['action_mode'] == 'sample'
    assert ppo['perception_node']['train_online'] is True and ppo['learner_node']['intrinsic_weight'] == 0.0
    ema = params(downstream.task_config(tmp_path / 'ema', 'online', 3, 8, perception={'ema_decay': 0.999}))
    assert ema['perception_node']['ema_decay'] == 0.999 and ema['perception_node']['train_online'] is True


def test_downstream_combine_pools_distinct_seeds_of_one_protocol(tmp_path, capsys):
    from ami_nodes.eval import downstream

    def results(name: str, seeds: list[int], window: list[float], rates: dict[str, float],
                perception: dict | None = None) -> Path:
        """A results.json whose runs of each mode in `rates` gain `rates[mode]` reward a minute,
        sampled every 5 s."""
        runs = [{'mode': mode, 'seed': seed, 'exit_code': 0,
                 'cumulative_reward': [(t, rates[mode] * t / 60.0) for t in range(0, 901, 5)]}
                for seed in seeds for mode in rates]
        directory = tmp_path / name
        directory.mkdir()
        (directory / 'results.json').write_text(json.dumps({
            'command': f'run {name}', 'smoke': False, 'harness': False, 'learner': 'branching_q',
            'q_replay': 'frames', 'seeds': seeds, 'window_minutes': window, 'minutes': 15.0,
            'targets': 8, 'learner_overrides': {}, 'reward_per_minute': {}, 'runs': runs,
            **({'perception_overrides': {mode: perception for mode in rates}} if perception else {})}))
        return directory

    first = results('a', [0, 1], [5.0, 15.0], {'online': 4.0, 'frozen': 2.0})
    second = results('b', [3], [5.0, 15.0], {'online': 1.0, 'frozen': 3.0})
    out = tmp_path / 'all'
    report = downstream.main(['--combine', str(first), str(second), '--out', str(out)])
    assert report['seeds'] == [0, 1, 3] and len(report['runs']) == 6
    assert report['reward_per_minute']['online'] == pytest.approx([4.0, 4.0, 1.0])
    assert report['reward_per_minute']['frozen'] == pytest.approx([2.0, 2.0, 3.0])
    text = (out / 'summary.md').read_text()
    assert f'`{first}`: `run a`' in text and 'online ahead on 2 of 3 seeds' in text
    assert json.loads((out / 'results.json').read_text())['sources'][1]['command'] == 'run b'
    for clash, reason in ((results('again', [1], [5.0, 15.0], {'online': 1.0, 'frozen': 1.0}), 'repeat a seed'),
                          (results('other_window', [7], [0.0, 15.0], {'online': 1.0, 'frozen': 1.0}),
                           'window_minutes differ')):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            downstream.main(['--combine', str(first), str(clash), '--out', str(tmp_path / 'no')])
        assert reason in capsys.readouterr().err
    assert not (tmp_path / 'no').exists()

    # one encoder's runs from another experiment: paired on the seeds both encoders ran
    ema = results('ema', [1, 3], [5.0, 15.0], {'online': 6.0}, {'ema_decay': 0.999})
    frozen_first, frozen_second = f'{first}:frozen', f'{second}:frozen'
    report = downstream.main(['--combine', frozen_first, frozen_second, str(ema), '--out', str(tmp_path / 'mixed')])
    reordered = downstream.main(['--combine', str(ema), frozen_second, frozen_first, '--out', str(tmp_path / 'mixed')])
    assert reordered['runs'] == report['runs'] and reordered['reward_per_minute'] == report['reward_per_minute']
    assert report['seeds'] == [1, 3] and report['unpaired_seeds_left_out'] == [0]
    assert report['reward_per_minute'] == {'online': pytest.approx([6.0, 6.0]), 'frozen': pytest.approx([2.0, 3.0])}
    assert report['perception_overrides'] == {'online': {'ema_decay': 0.999}, 'frozen': {}}
    assert "perception_node for online: {'ema_decay': 0.999}" in (tmp_path / 'mixed' / 'summary.md').read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):   # the plain online runs of `first` and the EMA ones are two encoders
        downstream.main(['--combine', str(first), str(ema), '--out', str(tmp_path / 'no')])
    assert 'repeat a seed' in capsys.readouterr().err
    other = results('other_ema', [4], [5.0, 15.0], {'online': 6.0}, {'ema_decay': 0.99})
    with pytest.raises(SystemExit):
        downstream.main(['--combine', str(ema), str(other), frozen_second, '--out', str(tmp_path / 'no')])
    assert 'online runs whose perception_overrides differ' in capsys.readouterr().err


def test_downstream_runs_its_protocol_in_the_harness(tmp_path):
    from ami_nodes.eval import downstream
    report = downstream.main(['--harness', '--learner', 'ppo', '--seeds', '0', '--minutes', '1', '--window', '0', '1',
                              '--targets', '8', '--intrinsic-weight', '0', '--out', str(tmp_path)])
    assert report['harness'] and report['learner_overrides'] == {'intrinsic_weight': 0.0}
    assert [run['mode'] for run in report['runs']] == list(downstream.MODES)
    for run in report['runs']:   # touches never decrease, and the window's rate is what the curve gained
        rewards = [r for _, r in run['cumulative_reward']]
        assert rewards == sorted(rewards) and rewards[-1] > 0
    assert all(len(values) == 1 and values[0] > 0 for values in report['reward_per_minute'].values())
    assert 'In-process harness' in (tmp_path / 'summary.md').read_text()
    assert (tmp_path / 'reward.png').stat().st_size > 0
