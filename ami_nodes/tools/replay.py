"""`ami replay`: pre-train the encoder offline on a recording's camera frames.

Reads image_raw (and the action topic, when it was recorded) from a recording written by
`ami record` or `ros2 bag record -s mcap`, decodes it with the schemas stored in the file
(mcap-ros2-support), and runs the same OnlinePerception step perception_node runs, frame by
frame, with the action taken since the previous frame. Saves the encoder as safetensors, the
format `python -m ami_nodes.eval.perception_probe --encoder` evaluates.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from safetensors.torch import save_file

from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from ami_nodes.recording.bag import bag_file
from ami_nodes.ros.messages import image_to_rgb, msg_to_action, stamp_to_ns
from ami_nodes.torch_device import configure_torch


def recorded_frames(path: Path, image_topic: str = '/image_raw',
                    action_topic: str = '/action'
                    ) -> Iterator[tuple[int, np.ndarray, tuple[int, ...] | None]]:
    """(stamp ns, RGB frame, action taken since the previous frame or None), in log order."""
    actions: dict[int, tuple[int, ...]] = {}
    previous_stamp: int | None = None
    with open(bag_file(path), 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, msg in reader.iter_decoded_messages([image_topic, action_topic]):
            stamp = stamp_to_ns(msg.header.stamp)
            if channel.topic == action_topic:
                actions[stamp] = msg_to_action(msg)
                continue
            prev_action = actions.pop(previous_stamp, None) if previous_stamp else None
            previous_stamp = stamp
            yield stamp, image_to_rgb(msg).copy(), prev_action  # writable, for torch


def pretrain(path: Path, out: Path, epochs: int = 1, image_topic: str = '/image_raw',
             config: OnlinePerceptionConfig | None = None, device: str = 'cpu',
             torch_threads: int = 1) -> dict:
    """Train OnlinePerception on every recorded frame, `epochs` times; returns a summary."""
    device = configure_torch(device, torch_threads)
    perception: OnlinePerception | None = None
    losses: list[float] = []
    with_action = frames = 0
    for _ in range(epochs):
        for _, rgb, prev_action in recorded_frames(path, image_topic):
            if perception is None:
                perception = OnlinePerception(config or OnlinePerceptionConfig(
                    image_size=rgb.shape[0]), device=device)
            step = perception.step(rgb, prev_action)
            frames += 1
            with_action += prev_action is not None
            if 'total' in step.losses:
                losses.append(step.losses['total'])
    if perception is None:
        raise ValueError(f'{path} has no messages on {image_topic}')
    out.mkdir(parents=True, exist_ok=True)
    save_file(perception.encoder_state(), str(out / 'encoder.safetensors'))
    tenth = max(1, len(losses) // 10)
    summary = {'recording': str(path), 'frames': frames, 'epochs': epochs,
               'frames_with_action': with_action, 'train_steps': perception.train_steps,
               'aux_loss_first_tenth': float(np.mean(losses[:tenth])) if losses else None,
               'aux_loss_last_tenth': float(np.mean(losses[-tenth:])) if losses else None,
               'encoder': str(out / 'encoder.safetensors')}
    (out / 'replay.json').write_text(json.dumps(summary, indent=2))
    return summary
