"""Refusing bad input: the callback guard and the checkpoint reply parser, without processes."""
import json

import pytest
from rclpy.logging import get_logger
from std_srvs.srv import SetBool

from ami_nodes.ros.checkpointing import MAX_REPLY_BYTES, make_reply, parse_reply
from ami_nodes.ros.errors import InputErrors
from ami_nodes.ros.messages import MessageError


def test_guard_counts_an_escaping_exception_and_the_node_goes_on():
    errors = InputErrors(get_logger('test_guard'))
    seen = []

    def on_message(msg):
        seen.append(msg)
        return json.loads(msg)

    guarded = errors.guard('/checkpoint/done', on_message)
    assert guarded('{"a": 1}') == {'a': 1} and errors.count == 0
    assert guarded('not json') is None
    assert errors.count == 1 and errors.last.startswith('/checkpoint/done: JSONDecodeError')
    assert guarded('[1]') == [1] and seen == ['{"a": 1}', 'not json', '[1]']


def test_guarded_service_answers_unsuccessfully():
    errors = InputErrors(get_logger('test_guard'))

    def on_set(request, response):
        raise RuntimeError('broken')

    response = errors.guard('set_acting', on_set)(SetBool.Request(data=True), SetBool.Response())
    assert response.success is False and 'RuntimeError: broken' in response.message
    assert errors.count == 1


def test_report_counts_every_refusal_even_when_the_log_is_throttled():
    errors = InputErrors(get_logger('test_report'), throttle_s=60.0)
    for i in range(50):
        errors.report('cmd_vel', f'velocity linear_x is nan ({i})')
    errors.report('reward', 'reward is inf')
    assert errors.count == 51 and errors.last == 'reward: reward is inf'
    errors.report('image_raw', f"image has encoding '{'x' * 100000}'")
    assert len(errors.last) < 400 and errors.last.endswith('... (100021 characters)')


def test_replies_round_trip():
    reply = parse_reply(make_reply('2026-11-24_01-02-03_1', 'policy_node', 'disk full').data)
    assert reply == {'name': '2026-11-24_01-02-03_1', 'node': 'policy_node', 'ok': False,
                     'error': 'disk full'}
    assert parse_reply(make_reply('2026-11-24_01-02-03', 'perception_node').data)['ok'] is True


@pytest.mark.parametrize('text, match', [
    ('not json', 'not JSON'),
    ('', 'not JSON'),
    ('[' * 100000 + ']' * 100000, 'characters'),
    ('[' * 30000 + ']' * 30000, 'not JSON|JSON list'),
    ('["name"]', 'JSON list'),
    ('null', 'JSON NoneType'),
    ('{}', 'missing or of the wrong type'),
    ('{"name": "2026-11-24_01-02-03", "node": "policy_node", "ok": "yes", "error": ""}',
     r"\['ok'\]"),
    ('{"name": 5, "node": "policy_node", "ok": true, "error": ""}', r"\['name'\]"),
    ('{"name": "../../etc/evil", "node": "policy_node", "ok": true, "error": ""}',
     'not one this store generates'),
    ('{"name": "2026-11-24_01-02-03", "node": "../evil", "ok": true, "error": ""}',
     'node name'),
    ('{"name": "2026-11-24_01-02-03", "node": "policy_node", "ok": true, "error": "x", '
     '"pad": "' + 'x' * MAX_REPLY_BYTES + '"}', 'characters'),
])
def test_malformed_replies_are_message_errors(text, match):
    with pytest.raises(MessageError, match=match):
        parse_reply(text)
