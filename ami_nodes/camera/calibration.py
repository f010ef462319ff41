"""camera_info from a calibration YAML (camera_calibration_parsers' format) or uncalibrated."""
from __future__ import annotations

from pathlib import Path

import yaml
from sensor_msgs.msg import CameraInfo


def load_camera_info(url: str, width: int, height: int, frame_id: str) -> CameraInfo:
    """CameraInfo for the published size; an empty url gives an uncalibrated one (K all zero).

    A calibration made at another resolution is scaled to the published one.
    """
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.header.frame_id = frame_id
    if not url:
        return info
    path = Path(url[len('file://'):] if url.startswith('file://') else url)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"camera_info_url '{url}' could not be read: {error}") from error
    sx = width / float(data['image_width'])
    sy = height / float(data['image_height'])
    k = list(map(float, data['camera_matrix']['data']))
    p = list(map(float, data.get('projection_matrix', {}).get('data', k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])))
    scale3 = [sx, sx, sx, sy, sy, sy, 1.0, 1.0, 1.0]
    info.k = [a * s for a, s in zip(k, scale3)]
    info.p = [a * s for a, s in zip(p, [sx] * 4 + [sy] * 4 + [1.0] * 4)]
    info.d = list(map(float, data.get('distortion_coefficients', {}).get('data', [])))
    info.r = list(map(float, data.get('rectification_matrix', {}).get('data', [1, 0, 0, 0, 1, 0, 0, 0, 1])))
    info.distortion_model = data.get('distortion_model', 'plumb_bob')
    return info
