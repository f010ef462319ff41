"""Self-supervised objectives over a replayed batch of transitions, with augmentations.

`aux` (aux_losses.py) trains on the live frame against its recent past; the objectives here
instead train on a batch: the live transition plus `replay_batch` transitions from the frame
set, each (frame_{t-1}, frame_t), every image randomly shifted and brightness-jittered (DrQ).

- `vicreg`: two augmented views of frame_t should agree; VICReg's variance and covariance
  terms keep the batch spread (Bardes et al. 2022), on a small expander head.
- `time_vicreg`: the same, but the second view is frame_{t-1}: what changes little over 50 ms
  (where the agent is, what it faces) is kept; pixel noise and the augmentations are dropped.
- `time_contrastive`: InfoNCE where frame_{t-1} is the positive of frame_t and the other rows
  of the batch, far away in time, are the negatives (time-contrastive networks, Sermanet 2018).
- `reconstruction`: a denoising autoencoder (seed 000's image -> embedding -> image): the
  features of an augmented frame_t must give back the clean frame_t, area-averaged to
  RECONSTRUCTION_SIZE, through a small MLP decoder. Nothing can collapse: every pixel counts.
- `inverse_dynamics`: which action led from frame_{t-1} to frame_t, told from the two frames'
  features through a small MLP (one softmax per action head); what moves when the agent acts
  (walls, where it stands) is what it must keep. VICReg's variance and covariance terms on
  frame_t's features keep the rest spread. Transitions with an unknown action add only those.

Each returns the loss, its detached terms, and a per-row error that becomes the row's
priority in the frame set.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.perception.aux_losses import (
    RECONSTRUCTION_SIZE,
    action_errors,
    covariance_loss,
    known_action_mean,
    reconstruction_errors,
    variance_loss,
)

AUX = 'aux'
RECONSTRUCTION = 'reconstruction'
INVERSE_DYNAMICS = 'inverse_dynamics'
OBJECTIVES = (AUX, 'vicreg', 'time_vicreg', 'time_contrastive', RECONSTRUCTION, INVERSE_DYNAMICS)


@dataclass
class ObjectiveConfig:
    """VICReg's weights (25/25/1) and head sizes; the augmentation's strength."""

    invariance: float = 25.0
    variance: float = 25.0
    covariance: float = 1.0
    temperature: float = 0.1
    expander_hidden: int = 256
    expander_dim: int = 256
    spread_variance: float = 1.0      # inverse_dynamics: aux's anti-collapse weights on the features
    spread_covariance: float = 0.04
    shift_pixels: int = 6
    brightness: float = 0.2


def augment(images: torch.Tensor, generator: torch.Generator, shift: int, brightness: float
            ) -> torch.Tensor:
    """Per image: a random translation of up to `shift` pixels (edges replicated) and a
    brightness factor in [1 - brightness, 1 + brightness]. images (B, C, H, W) in [0, 1]."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (shift,) * 4, mode='replicate') if shift else images
    offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=generator)
    crops = [padded[i, :, y:y + height, x:x + width] for i, (y, x) in enumerate(offsets.tolist())]
    gains = 1.0 + (torch.rand(batch, 1, 1, 1, generator=generator) * 2.0 - 1.0) * brightness
    return (torch.stack(crops) * gains.to(images.device)).clamp_(0.0, 1.0)


class BatchObjective(nn.Module):
    """One of OBJECTIVES other than `aux`; owns its expander head (trained with the encoder)."""

    def __init__(self, name: str, feature_dim: int, config: ObjectiveConfig | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if name not in OBJECTIVES or name == AUX:
            raise ValueError(f'objective {name!r}: expected one of {OBJECTIVES[1:]}')
        self.name = name
        self.config = config or ObjectiveConfig()
        cfg = self.config
        out = {RECONSTRUCTION: 3 * RECONSTRUCTION_SIZE ** 2, INVERSE_DYNAMICS: sum(ACTION_DIMS)}.get(
            name, cfg.expander_dim)
        inputs = 2 * feature_dim if name == INVERSE_DYNAMICS else feature_dim
        self.expander = nn.Sequential(  # the decoder, for reconstruction; the action classifier
            nn.Linear(inputs, cfg.expander_hidden), nn.ReLU(),
            nn.Linear(cfg.expander_hidden, out))
        self.generator = torch.Generator().manual_seed(seed)

    def views(self, prev_images: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two augmented inputs whose embeddings should agree, row by row."""
        cfg = self.config
        if self.name == INVERSE_DYNAMICS:   # one shift for both frames: a turn is a shift too
            pair = augment(torch.cat([images, prev_images], dim=1), self.generator, cfg.shift_pixels, cfg.brightness)
            return pair[:, :3], pair[:, 3:]
        second = images if self.name in ('vicreg', RECONSTRUCTION) else prev_images
        return (augment(images, self.generator, cfg.shift_pixels, cfg.brightness),
                augment(second, self.generator, cfg.shift_pixels, cfg.brightness))

    def forward(self, first: torch.Tensor, second: torch.Tensor,
                images: torch.Tensor | None = None, actions: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Loss over encoder features of the two views (B, D) each; terms; per-row error (B,).
        `images` (B, 3, H, W), the clean frame_t, are what reconstruction gives back; `actions`
        (B, heads), the choice per head taken between the frames (-1: unknown), what
        inverse_dynamics tells."""
        cfg = self.config
        if self.name == INVERSE_DYNAMICS:
            if actions is None:
                raise ValueError('inverse_dynamics needs the actions')
            per_row = action_errors(self.expander(torch.cat([first, second], dim=-1)), actions)
            terms = {'inverse_dynamics': known_action_mean(per_row, actions),
                     'variance': variance_loss(first), 'covariance': covariance_loss(first)}
            loss = (terms['inverse_dynamics'] + cfg.spread_variance * terms['variance']
                    + cfg.spread_covariance * terms['covariance'])
            return loss, {k: v.detach() for k, v in terms.items()}, per_row.detach()
        if self.name == RECONSTRUCTION:
            if images is None:
                raise ValueError('reconstruction needs the clean images')
            # both views decode to the same clean frame (the second is frame_t too)
            per_row = 0.5 * (reconstruction_errors(self.expander(first), images)
                             + reconstruction_errors(self.expander(second), images))
            loss = per_row.mean()
            return loss, {'reconstruction': loss.detach()}, per_row.detach()
        z1, z2 = self.expander(first), self.expander(second)
        if self.name == 'time_contrastive':
            a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
            logits = a @ b.T / cfg.temperature
            labels = torch.arange(a.shape[0], device=a.device)
            per_row = 0.5 * (F.cross_entropy(logits, labels, reduction='none')
                             + F.cross_entropy(logits.T, labels, reduction='none'))
            loss = per_row.mean()
            return loss, {'contrastive': loss.detach()}, per_row.detach()
        per_row = (z1 - z2).pow(2).mean(dim=-1)
        terms = {'invariance': per_row.mean(),
                 'variance': 0.5 * (variance_loss(z1) + variance_loss(z2)),
                 'covariance': 0.5 * (covariance_loss(z1) + covariance_loss(z2))}
        loss = (cfg.invariance * terms['invariance'] + cfg.variance * terms['variance']
                + cfg.covariance * terms['covariance'])
        return loss, {k: v.detach() for k, v in terms.items()}, per_row.detach()
