"""ExperienceBuffer: rollouts of consecutive steps only, whatever the stream does."""
import threading

import numpy as np
import torch

from ami_nodes.learning.experience import ExperienceBuffer, Rollout, Transition


def tr(seq: int, stamp: int | None = None, reward: float = 0.0) -> Transition:
    return Transition(seq=seq, stamp_ns=seq * 50_000_000 if stamp is None else stamp,
                      features=np.full(4, seq, np.float32), action=np.array([seq % 3, 0, 1, 0, 1]),
                      log_prob=-float(seq), value=0.1 * seq, policy_version=seq // 10, extrinsic_reward=reward)


def feed(buf: ExperienceBuffer, seqs) -> list[Rollout]:
    for s in seqs:
        buf.add(tr(s) if isinstance(s, int) else s)
    out = []
    while (r := buf.pop()) is not None:
        out.append(r)
    return out


def test_consecutive_stream_gives_overlapping_full_rollouts_with_a_bootstrap():
    buf = ExperienceBuffer(rollout_length=4, min_rollout_length=2)
    rollouts = feed(buf, [tr(s, reward=float(s)) for s in range(9)])
    assert [r.seq.tolist() for r in rollouts] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    r = rollouts[0]
    assert r.next_features[:, 0].tolist() == [1, 2, 3, 4]  # step t's target is step t+1's features
    assert r.extrinsic_rewards.tolist() == [1, 2, 3, 4]  # the reward observed with step t+1
    assert r.bootstrap_value == np.float32(0.4) and not r.ends_at_gap
    assert r.features.shape == (4, 4) and r.actions.shape == (4, 5) and r.actions.dtype == np.int64
    assert buf.stats()['run_length'] == 1  # transition 8 starts the next rollout


def test_gap_truncates_the_run_and_never_stitches():
    buf = ExperienceBuffer(rollout_length=8, reorder_window=2, min_rollout_length=2)
    rollouts = feed(buf, [0, 1, 2, 3, 4, 10, 11, 12, 13])  # 5..9 lost
    assert len(rollouts) == 1
    r = rollouts[0]
    assert r.seq.tolist() == [0, 1, 2, 3] and r.ends_at_gap  # 4 is the bootstrap, not a trained step
    assert r.next_features[-1, 0] == 4
    stats = buf.stats()
    assert stats['gaps'] == 1 and stats['missing'] == 5 and stats['short_rollouts'] == 1
    more = feed(buf, range(14, 20))
    assert more[0].seq.tolist() == list(range(10, 18))  # the new run starts after the hole


def test_reordering_within_the_window_is_resorted_without_loss():
    buf = ExperienceBuffer(rollout_length=6, reorder_window=3, min_rollout_length=2)
    rollouts = feed(buf, [0, 1, 3, 2, 4, 6, 5, 7])
    assert [r.seq.tolist() for r in rollouts] == [[0, 1, 2, 3, 4, 5]]
    stats = buf.stats()
    assert stats['reordered'] == 2 and stats['gaps'] == 0 and stats['late_dropped'] == 0


def test_too_late_and_duplicate_arrivals_are_dropped():
    buf = ExperienceBuffer(rollout_length=4, reorder_window=1, min_rollout_length=1)
    feed(buf, [0, 1, 3, 4])  # 2 is given up once 4 (two ahead) arrives
    rollouts = feed(buf, [2, 4, 5, 6, 7, 8])  # 2 too late, 4 a duplicate
    stats = buf.stats()
    assert stats['late_dropped'] == 2 and stats['gaps'] == 1
    assert all(2 not in r.seq for r in rollouts)


def test_a_restarted_sender_starts_a_new_run():
    buf = ExperienceBuffer(rollout_length=4, min_rollout_length=2)
    feed(buf, [tr(s, stamp=s) for s in range(100, 104)])
    rollouts = feed(buf, [tr(s, stamp=1000 + s) for s in range(0, 5)])  # seq back to 0, time moved on
    assert buf.stats()['restarts'] == 1
    assert [r.seq.tolist() for r in rollouts] == [[100, 101, 102], [0, 1, 2, 3]]


def test_short_runs_are_discarded_and_the_queue_is_bounded():
    buf = ExperienceBuffer(rollout_length=2, reorder_window=0, min_rollout_length=2, max_rollouts=2)
    for s in [0, 1, 5, 6, 7, 8, 9, 10, 11]:
        buf.add(tr(s))
    stats = buf.stats()
    assert stats['discarded'] == 2  # 0, 1: one trainable step is below the minimum
    assert stats['evicted'] == 1 and stats['ready'] == 2
    assert buf.pop().seq.tolist() == [7, 8]  # the oldest (5, 6) was evicted


def test_pop_waits_for_a_producer_thread():
    buf = ExperienceBuffer(rollout_length=16)
    producer = threading.Thread(target=lambda: [buf.add(tr(s)) for s in range(17)])
    producer.start()
    rollout = buf.pop(timeout=5.0)
    producer.join()
    assert rollout is not None and len(rollout) == 16


def test_state_dict_round_trip_continues_the_stream():
    buf = ExperienceBuffer(rollout_length=4, reorder_window=2, min_rollout_length=1)
    for s in [0, 1, 2, 3, 4, 5, 7]:  # one ready rollout, a run of 2, 7 pending
        buf.add(tr(s))
    state = buf.state_dict()
    assert isinstance(state['sources']['']['run']['features'], torch.Tensor)
    clone = ExperienceBuffer(rollout_length=4, reorder_window=2, min_rollout_length=1)
    clone.load_state_dict(state)
    assert clone.stats() == buf.stats()
    first = clone.pop()
    assert first.seq.tolist() == [0, 1, 2, 3] and first.log_probs.tolist() == [0, -1, -2, -3]
    rollouts = feed(clone, [6, 8, 9])
    assert rollouts[0].seq.tolist() == [4, 5, 6, 7] and clone.stats()['reordered'] == 1
    assert Rollout.from_state_dict(first.state_dict()).seq.tolist() == [0, 1, 2, 3]


def test_sources_keep_their_own_numbering_and_counters():
    """Two robots both counting from 0: interleaved, each still gives gap-free rollouts."""
    buf = ExperienceBuffer(rollout_length=4, reorder_window=1, min_rollout_length=2)
    rollouts = []
    for s in range(9):
        buf.add(tr(s), source='robot_0')
        if s != 3:  # robot_1 loses seq 3 and later restarts its numbering
            buf.add(tr(s), source='robot_1')
        while (r := buf.pop()) is not None:
            rollouts.append(r)
    buf.add(tr(0, stamp=10**12), source='robot_1')
    for r in rollouts:
        assert np.all(np.diff(r.seq) == 1)
    per_source = buf.source_stats()
    assert per_source['robot_0']['gaps'] == 0 and per_source['robot_0']['rollouts'] == 2
    assert per_source['robot_1']['gaps'] == 1 and per_source['robot_1']['missing'] == 1
    assert per_source['robot_1']['restarts'] == 1 and per_source['robot_0']['restarts'] == 0
    assert buf.stats()['received'] == 9 + 8 + 1
    clone = ExperienceBuffer(rollout_length=4, reorder_window=1, min_rollout_length=2)
    clone.load_state_dict(buf.state_dict())
    assert clone.source_stats() == per_source


def test_a_state_from_before_sources_loads_as_one_source():
    buf = ExperienceBuffer(rollout_length=4, min_rollout_length=2)
    for s in range(6):
        buf.add(tr(s), source='experience')
    stream = buf.state_dict()['sources']['experience']
    legacy = {**stream, 'counters': {**stream['counters'], 'evicted': 0},
              'ready': buf.state_dict()['ready']}
    clone = ExperienceBuffer(rollout_length=4, min_rollout_length=2)
    clone.load_state_dict(legacy, legacy_source='experience')
    assert clone.source_stats() == buf.source_stats() and len(clone) == 1
    clone.add(tr(6), source='experience')
    assert clone.source_stats()['experience']['gaps'] == 0
