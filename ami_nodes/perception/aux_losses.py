"""Self-supervised losses that let the encoder train on the live stream (seed 003).

Each term is a small pure function of tensors; `AuxLoss` combines the ones whose weight is
non-zero. Conventions: `features` is the live (1, D) or (B, D) tensor of the current frame and
carries gradients; everything from the past (`prev_features`, `history`) is detached. With
`predictive_gradient: context` it is the other way round for the rows: `prev_features` carry
the gradients and `features` are the stop-gradient target (`both`: the two carry them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.settings import setting

ACTION_ONE_HOT_DIM = sum(ACTION_DIMS)
#: The reconstruction target's side: 84 / 4, the probe's raw-pixel baseline size.
RECONSTRUCTION_SIZE = 21
#: Which side of the predictive term trains the encoder (AuxLossConfig.predictive_gradient).
PREDICTIVE_GRADIENTS = ('target', 'context', 'both')
#: The predictor's form (AuxLossConfig.predictor): an MLP, or one linear map per action choice.
PREDICTORS = ('mlp', 'linear')


@dataclass
class AuxLossConfig:
    """Weights (0 disables a term) and the few shape parameters the terms need.

    The defaults are the ones the offline probe was run with (docs/perception.md).
    """

    loss_predictive: float = setting(1.0, 'Weight of temporal predictive coding', 0.0, 100.0,
                                     live=True)
    loss_coherence: float = setting(0.1, 'Weight of action-gated temporal coherence',
                                    0.0, 100.0, live=True)
    loss_variance: float = setting(1.0, 'Weight of the VICReg variance (anti-collapse) term',
                                   0.0, 100.0, live=True)
    loss_covariance: float = setting(0.04, 'Weight of the VICReg covariance term', 0.0, 100.0,
                                     live=True)
    loss_contrastive: float = setting(0.0, 'Weight of the contrastive (near vs far steps) term',
                                      0.0, 100.0, live=True)
    loss_reconstruction: float = setting(30.0, 'Weight of the term that decodes each row\'s frame '
                                         '(21x21) from its features; its decoder exists only '
                                         'when this starts above 0', 0.0, 100.0)
    loss_inverse_dynamics: float = setting(0.0, 'Weight of the term that tells the action from '
                                           '(f_t, f_{t-1}); its classifier exists only when '
                                           'this starts above 0', 0.0, 100.0)
    loss_odometry: float = setting(0.0, "Weight of the term that makes a read-out of the "
                                   "features move as the robot's dead-reckoned pose moves between "
                                   'two trained rows (needs measured_velocity; its read-out exists '
                                   'only when this starts above 0)', 0.0, 100.0)
    odometry_horizon: int = setting(200, 'Pairs of rows further apart than this many frames do not '
                                    'count in the odometry term, so drift beyond it does not '
                                    'teach (0: any pair of one odometry session)', 0, 10**9)
    odometry_hidden: int = setting(64, 'Hidden width of the MLP through which the odometry term reads '
                                   'the features (0: a linear read-out, so pose must lie along four '
                                   "directions of the features themselves, which costs their rank)",
                                   0, 65536)
    variance_target: float = 1.0
    contrastive_gap: int = 10
    contrastive_temperature: float = 0.1
    predictor_hidden: int = 128
    predictor: str = setting('linear', "The predictive term's predictor: f_{t-1} moved by a linear "
                             "map per action choice ('linear': actions must act on the features "
                             "as linear maps) or an MLP on (f_{t-1}, action) ('mlp', seed 003)",
                             choices=PREDICTORS)
    head_hidden: int = setting(64, 'Hidden width of the reconstruction decoder and the action classifier', 1, 65536)
    projector_hidden: int = setting(0, 'Hidden width of an MLP projector between the published '
                                    'features and the predictive, coherence, variance, covariance '
                                    'and contrastive terms (0: none, the terms shape the features '
                                    'themselves, seed 003); the reconstruction and inverse-dynamics '
                                    'heads always read the features', 0, 65536)
    predictive_gradient: str = setting('context', 'Which features the predictive term trains: the '
                                       "previous frame's ('context': the encoder learns what "
                                       'predicts the next step; those features carry every term '
                                       'and the target stops gradients, as in SimSiam and SPR), '
                                       "the predicted frame's ('target', seed 003) or 'both' (one "
                                       'more encoder pass per row)', choices=PREDICTIVE_GRADIENTS)

    @property
    def trains_context(self) -> bool:
        """Whether the previous frame's features must carry gradients."""
        return bool(self.loss_predictive) and self.predictive_gradient != 'target'

    @property
    def trains_target(self) -> bool:
        """Whether the predicted frame's features carry the predictive term's gradient."""
        return self.predictive_gradient != 'context'

    @property
    def context_rows_train(self) -> bool:
        """Whether f_{t-1}, not f_t, carries every term's gradient: when only the context side
        of the predictive term trains, f_t is a pure target and needs no gradients, so a
        training step encodes as many images with gradients as with `target`."""
        return self.trains_context and not self.trains_target


class Predictor(nn.Module):
    """Small MLP: (features_{t-1}, one_hot(action_{t-1})) -> predicted features_t."""

    def __init__(self, feature_dim: int, action_dim: int = ACTION_ONE_HOT_DIM, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim + action_dim, hidden), nn.ReLU(), nn.Linear(hidden, feature_dim))

    def forward(self, prev_features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # Residual form: "nothing changes" is the easy default, the MLP learns the change.
        return prev_features + self.net(torch.cat([prev_features, action], dim=-1))


class LinearActionPredictor(nn.Module):
    """f_{t-1} + sum over the action's one-hot entries of (M_k f_{t-1} + b_k): each action choice
    moves the features by a linear map of its own. The maps start at zero ("nothing changes")."""

    def __init__(self, feature_dim: int, action_dim: int = ACTION_ONE_HOT_DIM) -> None:
        super().__init__()
        self.maps = nn.Parameter(torch.zeros(action_dim, feature_dim, feature_dim))
        self.shifts = nn.Linear(action_dim, feature_dim, bias=False)
        nn.init.zeros_(self.shifts.weight)

    def forward(self, prev_features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        moved = torch.einsum('ba,ade,be->bd', action, self.maps, prev_features)
        return prev_features + moved + self.shifts(action)


def predictive_coding_loss(prediction: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """MSE between the predictor's guess and the live features (trains both sides)."""
    return F.mse_loss(prediction, features)


def coherence_loss(features: torch.Tensor, prev_features: torch.Tensor,
                   action_magnitude: torch.Tensor | float) -> torch.Tensor:
    """Slow features, except when the agent acted: ||f_t - f_{t-1}||^2 / (1 + |a|)."""
    delta = (features - prev_features.detach()).pow(2).mean(dim=-1)
    return (delta / (1.0 + torch.as_tensor(action_magnitude, dtype=delta.dtype))).mean()


def variance_loss(batch: torch.Tensor, target: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance hinge: every dimension's std across the batch should reach `target`."""
    std = torch.sqrt(batch.var(dim=0) + eps)
    return F.relu(target - std).mean()


def covariance_loss(batch: torch.Tensor) -> torch.Tensor:
    """VICReg covariance: squared off-diagonal covariance, so dimensions carry different things."""
    n, d = batch.shape
    centred = batch - batch.mean(dim=0)
    cov = centred.T @ centred / max(n - 1, 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


def contrastive_loss(features: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                     temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE: the current frame should be closer (cosine) to a near step than to far ones.

    features (1, D) live; positive (1, D) and negatives (K, D) detached.
    """
    anchor = F.normalize(features, dim=-1)
    candidates = F.normalize(torch.cat([positive, negatives], dim=0).detach(), dim=-1)
    logits = anchor @ candidates.T / temperature
    return F.cross_entropy(logits, torch.zeros(anchor.shape[0], dtype=torch.long, device=logits.device))


def reconstruction_errors(decoded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per-row MSE (B,) between decoded logits (B, 3 * 21 * 21) through a sigmoid and the frames
    (B, 3, H, W) area-averaged to 21x21: what the features must keep of the picture (seed 000)."""
    target = F.adaptive_avg_pool2d(images, RECONSTRUCTION_SIZE).flatten(1)
    return (torch.sigmoid(decoded) - target).pow(2).mean(dim=-1)


def action_errors(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Per row, the cross-entropy summed over action heads of which choice led from one frame
    to the next; rows with an unknown action count 0. logits (B, sum(ACTION_DIMS)); actions
    (B, heads), each head's choice index, -1 where unknown."""
    known = (actions >= 0).all(dim=-1)
    return sum(F.cross_entropy(head, actions[:, i].clamp(min=0), reduction='none')
               for i, head in enumerate(logits.split(ACTION_DIMS, dim=-1))) * known


def known_action_mean(errors: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """action_errors (B,) averaged over the rows whose action is known (0 when none is)."""
    return errors.sum() / (actions >= 0).all(dim=-1).sum().clamp(min=1)


def inverse_dynamics_loss(logits: torch.Tensor, action_one_hot: torch.Tensor) -> torch.Tensor:
    """known_action_mean where an unknown action is an all-zero one-hot row.
    action_one_hot: (B, sum(ACTION_DIMS))."""
    known = action_one_hot.sum(dim=-1) > 0
    choices = torch.stack([head.argmax(dim=-1) for head in action_one_hot.split(ACTION_DIMS, dim=-1)], dim=-1)
    actions = torch.where(known[:, None], choices, -1)
    return known_action_mean(action_errors(logits, actions), actions)


#: Metres that count as one unit in the odometry term's position targets (about a room's width),
#: so position and heading (cos, sin) weigh alike.
ODOMETRY_SCALE_M = 4.0
#: What the odometry read-out gives per row: x and y over ODOMETRY_SCALE_M, cos and sin of yaw.
ODOMETRY_OUTPUTS = 4


def odometry_targets(poses: torch.Tensor) -> torch.Tensor:
    """(B, 3) dead-reckoned (x, y, yaw) -> (B, 4) read-out targets; NaN rows stay NaN."""
    return torch.stack([poses[:, 0] / ODOMETRY_SCALE_M, poses[:, 1] / ODOMETRY_SCALE_M,
                        torch.cos(poses[:, 2]), torch.sin(poses[:, 2])], dim=-1)


def odometry_loss(readout: torch.Tensor, poses: torch.Tensor, ticks: torch.Tensor, horizon: int) -> torch.Tensor | None:
    """Mean over the pairs (i, j) of rows whose poses are known and whose frames are at most
    `horizon` frames apart (0: any) of ||(r_j - r_i) - (o_j - o_i)||^2, r the read-out and o the
    odometry targets: the read-out must move as the robot moved ("learning to see by moving",
    Agrawal et al. 2015, with the robot's own odometry). Differences only, so where odometry
    started does not matter. None when no pair counts. readout (B, 4); poses (B, 3), NaN when
    unknown; ticks (B,) frame numbers."""
    targets = odometry_targets(poses)
    known = ~torch.isnan(targets).any(dim=-1)
    pairs = (known[:, None] & known[None, :]).triu(1)
    if horizon > 0:
        pairs &= (ticks[:, None] - ticks[None, :]).abs() <= horizon
    if not pairs.any():
        return None
    first, second = pairs.nonzero(as_tuple=True)
    targets = torch.nan_to_num(targets)
    moved = (readout[second] - readout[first]) - (targets[second] - targets[first])
    return moved.pow(2).sum(dim=-1).mean()


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


class AuxLoss(nn.Module):
    """The weighted sum of the enabled terms; owns the predictor, and the decoder and action
    classifier when their terms are on, so they train with the encoder."""

    def __init__(self, feature_dim: int, config: AuxLossConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or AuxLossConfig()
        self.predictor = (Predictor(feature_dim, hidden=cfg.predictor_hidden) if cfg.predictor == 'mlp'
                          else LinearActionPredictor(feature_dim))
        self.heads = nn.ModuleDict()
        if cfg.projector_hidden > 0:
            self.heads['projector'] = _mlp(feature_dim, cfg.projector_hidden, feature_dim)
        if cfg.loss_reconstruction > 0:
            self.heads['decoder'] = _mlp(feature_dim, cfg.head_hidden, 3 * RECONSTRUCTION_SIZE ** 2)
        if cfg.loss_inverse_dynamics > 0:
            self.heads['inverse'] = _mlp(2 * feature_dim, cfg.head_hidden, ACTION_ONE_HOT_DIM)
        if cfg.loss_odometry > 0:
            self.heads['odometry'] = (_mlp(feature_dim, cfg.odometry_hidden, ODOMETRY_OUTPUTS) if cfg.odometry_hidden
                                      else nn.Linear(feature_dim, ODOMETRY_OUTPUTS, bias=False))

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """The space the predictive and anti-collapse terms act in: the projector's output when
        there is one (the published features then keep what those terms would squeeze out, as
        behind SimCLR's and VICReg's projectors), else the features themselves."""
        return self.heads['projector'](features) if 'projector' in self.heads else features

    def predict(self, prev_features: torch.Tensor, action_one_hot: torch.Tensor | None) -> torch.Tensor:
        """Predicted current features, projected; an unknown action is the all-zero vector. The
        previous features keep their gradients only when `predictive_gradient` trains the context."""
        if action_one_hot is None:
            action_one_hot = prev_features.new_zeros(prev_features.shape[0], ACTION_ONE_HOT_DIM)
        context = prev_features if self.config.trains_context else prev_features.detach()
        return self.predictor(self.project(context), action_one_hot)

    def forward(self, features: torch.Tensor, prediction: torch.Tensor | None, prev_features: torch.Tensor,
                action_magnitude: torch.Tensor | float, history: torch.Tensor,
                images: torch.Tensor | None = None, action_one_hot: torch.Tensor | None = None,
                poses: torch.Tensor | None = None, ticks: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and each enabled term (unweighted, detached) for logging.

        features (B, D) live; row 0 is the frame that just arrived, any further rows are replayed
        transitions. prediction: `predict(prev_features, action)` or None when the predictive term
        is off. action_magnitude: scalar or (B,). history: (N, D) detached recent features of the
        live stream, oldest first, the newest being row 0's features_{t-1}. The trained rows are
        `features`, or `prev_features` when `context_rows_train`: the coherence, variance,
        covariance, reconstruction terms act on them (variance and covariance with history), the
        contrastive term on row 0 of `features`. images (B, 3, H, W) in [0, 1], each trained
        row's frame, feed the reconstruction term; action_one_hot (B, sum(ACTION_DIMS)) the
        inverse-dynamics term; poses (B, 3) dead-reckoned (x, y, yaw) of each trained row's frame
        (NaN unknown) and ticks (B,) their frame numbers the odometry term; a term is skipped
        without its inputs.
        """
        cfg = self.config
        terms: dict[str, torch.Tensor] = {}
        embedded = self.project(features)
        rows, others = (prev_features, features) if cfg.context_rows_train else (features, prev_features)
        embedded_rows = self.project(rows) if cfg.context_rows_train else embedded
        if cfg.loss_predictive and prediction is not None:
            target = embedded if cfg.trains_target else embedded.detach()
            terms['predictive'] = predictive_coding_loss(prediction, target)
        if cfg.loss_coherence:
            terms['coherence'] = coherence_loss(embedded_rows, self.project(others.detach()), action_magnitude)
        with torch.no_grad():
            history = self.project(history)
        if (cfg.loss_variance or cfg.loss_covariance) and history.shape[0] + features.shape[0] >= 2:
            batch = torch.cat([history.detach(), embedded_rows], dim=0)
            if cfg.loss_variance:
                terms['variance'] = variance_loss(batch, cfg.variance_target)
            if cfg.loss_covariance:
                terms['covariance'] = covariance_loss(batch)
        if cfg.loss_contrastive and history.shape[0] > cfg.contrastive_gap:
            negatives = history[:-cfg.contrastive_gap]
            terms['contrastive'] = contrastive_loss(embedded[:1], history[-1:], negatives, cfg.contrastive_temperature)
        if cfg.loss_reconstruction and 'decoder' in self.heads and images is not None:
            terms['reconstruction'] = reconstruction_errors(self.heads['decoder'](rows), images).mean()
        if cfg.loss_inverse_dynamics and 'inverse' in self.heads and action_one_hot is not None:
            context = prev_features if cfg.trains_context else prev_features.detach()
            logits = self.heads['inverse'](torch.cat([features, context], dim=-1))
            terms['inverse_dynamics'] = inverse_dynamics_loss(logits, action_one_hot)
        if cfg.loss_odometry and 'odometry' in self.heads and poses is not None and ticks is not None:
            odometry = odometry_loss(self.heads['odometry'](rows), poses, ticks, cfg.odometry_horizon)
            if odometry is not None:
                terms['odometry'] = odometry
        weights = {'predictive': cfg.loss_predictive, 'coherence': cfg.loss_coherence,
                   'variance': cfg.loss_variance, 'covariance': cfg.loss_covariance,
                   'contrastive': cfg.loss_contrastive, 'reconstruction': cfg.loss_reconstruction,
                   'inverse_dynamics': cfg.loss_inverse_dynamics, 'odometry': cfg.loss_odometry}
        total = sum((weights[name] * value for name, value in terms.items()), features.new_zeros(()))
        return total, {name: value.detach() for name, value in terms.items()}
