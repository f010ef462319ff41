"""QoS profiles by role, so every node agrees on them (and the README table can cite them)."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

#: Subscriptions to camera images: best effort, newest frames only (as image_pipeline does).
SENSOR = qos_profile_sensor_data

#: Hot-path inputs: only the newest sample matters; a backlog would only add latency.
LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                    history=HistoryPolicy.KEEP_LAST)

#: Hot-path streams (features, action, cmd_vel): reliable, a short queue.
STREAM = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                    history=HistoryPolicy.KEEP_LAST)

#: Camera frames a learner pairs with decisions: best effort, a second's worth queued (a busy
#: learner catches up rather than losing the frame of a decision).
REPLAY_FRAMES = QoSProfile(depth=20, reliability=ReliabilityPolicy.BEST_EFFORT,
                           history=HistoryPolicy.KEEP_LAST)

#: Experience for the learner: reliable with a deep queue, a lost sample is a gap.
EXPERIENCE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)

#: Latest-value topics a late joiner must still get (weights, versions).
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)

#: Scalars for rqt_plot and preview images.
MONITOR = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)
