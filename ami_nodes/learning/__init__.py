"""The learning core (no rclpy): actor-critic, curiosity, experience stream, PPO, learner."""
from ami_nodes.learning.actor_critic import ActorCritic, ActResult, BatchActResult
from ami_nodes.learning.curiosity import Curiosity, ForwardDynamics
from ami_nodes.learning.experience import ExperienceBuffer, Rollout, Transition
from ami_nodes.learning.learner import CuriosityPPOLearner, LearnerConfig
from ami_nodes.learning.ppo import PPOConfig, PPOTrainer, Segment, compute_gae, vtrace
from ami_nodes.learning.running_stats import RunningMeanStd

__all__ = ['ActorCritic', 'ActResult', 'BatchActResult', 'Curiosity', 'ForwardDynamics', 'ExperienceBuffer',
           'Rollout', 'Transition', 'CuriosityPPOLearner', 'LearnerConfig', 'PPOConfig', 'PPOTrainer', 'Segment',
           'compute_gae', 'vtrace', 'RunningMeanStd']
