"""Managed nodes: the ROS 2 lifecycle (as nav2 and yolo_ros nodes follow it) for ami nodes.

- configure: build the models and load the checkpoint; a bad parameter or checkpoint fails
  the transition with the reason logged and shown on /diagnostics (never SystemExit), and the
  node waits in `unconfigured` for another try;
- activate / deactivate: start / stop acting or learning;
- cleanup / shutdown: save what can be saved, then drop the models.

A node's topics, services and timers are created at its first successful configure and kept
(callbacks look at the state), so a cleanup followed by configure reuses them. /diagnostics
keeps publishing in every state and reports it. `autostart` (nav2's lifecycle_manager word,
default true) configures and activates the node at start, so `ros2 run`, `ros2 launch` and
ami_launch bring it to active by themselves; with autostart true a failed configure still
ends the process with exit code 2, as a plain start always did.
"""
from __future__ import annotations

from collections.abc import Sequence

from lifecycle_msgs.msg import State
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ami_nodes.ros import diagnostics
from ami_nodes.ros.errors import ConfigureError, InputErrors
from ami_nodes.ros.params import Apply, Param, Refuse, declare_checked

AUTOSTART = Param('autostart', True, 'Configure and activate at start (false: wait in the '
                  'unconfigured state for `ros2 lifecycle set` or a lifecycle manager)')

#: lifecycle_msgs State ids by label, for /diagnostics and tools.
STATE_LABELS = {State.PRIMARY_STATE_UNCONFIGURED: 'unconfigured',
                State.PRIMARY_STATE_INACTIVE: 'inactive',
                State.PRIMARY_STATE_ACTIVE: 'active',
                State.PRIMARY_STATE_FINALIZED: 'finalized'}


class ManagedNode(LifecycleNode):
    """A lifecycle node whose subclasses implement the five steps below; this class keeps
    the state, turns failures into failed transitions, and reports on /diagnostics."""

    def __init__(self, name: str, parameters: Sequence[Param], apply: Apply | None = None,
                 refuse: Refuse | None = None) -> None:
        super().__init__(name)
        self.p, self._bad_parameters = declare_checked(self, (*parameters, AUTOSTART), apply,
                                                       refuse)
        self.errors = InputErrors(self.get_logger())
        self.configured = False
        self.active = False
        self.failure = ''  # why the last transition failed, until one succeeds
        self._wired = False
        diagnostics.DiagnosticsPublisher(self, self._diagnose, self.errors)

    # --- what a node implements -------------------------------------------------------
    def build(self) -> None:
        """Build the models and load the checkpoint; raise ConfigureError to refuse."""

    def wire(self) -> None:
        """Create topics, services and timers (once, at the first successful configure)."""

    def start(self) -> None:
        """Start acting or learning (on activate)."""

    def stop(self, why: str) -> None:
        """Stop acting or learning (on deactivate, and on shutdown from active); `why` is
        'deactivated' or 'shutdown', for the log."""

    def save_and_drop(self, final_checkpoint: bool) -> None:
        """Save what can be saved (a final checkpoint if asked), then drop the models (on
        cleanup and shutdown)."""

    def report(self) -> diagnostics.Report:
        """Health while configured (inactive or active)."""
        return diagnostics.OK, '', {}

    # --- the state machine ------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._bad_parameters:
            return self._failed('configure', ' '.join(self._bad_parameters))
        try:
            self.build()
            if not self._wired:
                self.wire()
                self._wired = True
        except ConfigureError as error:
            return self._failed('configure', str(error))
        except Exception as error:  # noqa: BLE001 - e.g. torch refusing the device
            return self._failed('configure', f'{type(error).__name__}: {error}')
        self.configured, self.failure = True, ''
        self.get_logger().info('configured')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers first
        self.start()
        self.active, self.failure = True, ''
        self.get_logger().info('active')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.stop('deactivated')  # while publishers still publish: a stop command goes out
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.save_and_drop(final_checkpoint=True)
        self.configured = False
        self.get_logger().info('cleaned up')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.finish()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.failure = self.failure or f'error while leaving {state.label}'
        self.get_logger().error(f'{self.failure}; back to unconfigured')
        self.finish()
        return super().on_error(state)

    def finish(self, final_checkpoint: bool = True) -> None:
        """Stop and save, from whatever state: the work of shutdown, also at process exit."""
        if self.active:
            self.active = False
            self.stop('shutdown')
        if self.configured:
            self.configured = False
            self.save_and_drop(final_checkpoint)

    def _failed(self, transition: str, reason: str) -> TransitionCallbackReturn:
        self.failure = f'{transition} failed: {reason}'
        self.get_logger().error(self.failure)
        return TransitionCallbackReturn.FAILURE

    def autostart(self) -> bool:
        """Configure and activate when `autostart` is true; False if a transition failed."""
        if not self.p.autostart:
            self.get_logger().info('autostart is false: unconfigured, waiting for '
                                   f'`ros2 lifecycle set {self.get_fully_qualified_name()} '
                                   'configure`')
            return True
        return (self.trigger_configure() == TransitionCallbackReturn.SUCCESS
                and self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    def state_label(self) -> str:
        return STATE_LABELS.get(self._state_machine.current_state[0],
                                self._state_machine.current_state[1])

    def close(self) -> None:
        """Process exit (run_node, after spinning stopped): the shutdown work, release and
        drop, without the state machine and without a final checkpoint. Nothing spins any
        more, and after a stop signal the context is down, so no other node could answer."""
        if self.state_label() != 'finalized':
            self.finish(final_checkpoint=False)

    def _diagnose(self) -> diagnostics.Report:
        state = self.state_label()
        if self.configured:
            level, message, values = self.report()
        else:
            level, message, values = diagnostics.OK, '', {}
        values = {'lifecycle_state': state, **values}
        if self.failure:
            return diagnostics.ERROR, f'{state}: {self.failure}', {**values,
                                                                 'failure': self.failure}
        if state != 'active':
            return diagnostics.OK if self.configured else diagnostics.WARN, state, values
        return level, message, values
