"""Batch augmentations on uint8 image tensors, driven by an explicit ``torch.Generator``.

Working on whole batches keeps the data path cheap on a CPU (no worker processes), and taking
the randomness from a generator seeded per batch makes every batch a pure function of
(seed, epoch, batch index): a resumed run and a distributed run see the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Augment", "AugmentDraw", "channel_stats", "normalize", "random_crop", "random_flip"]


def random_crop(images: Tensor, padding: int, top: Tensor, left: Tensor) -> Tensor:
    r"""Zero-pad each side by ``padding``, then crop back to the original size at offset
    $(a_i, b_i)$ = (``top[i]``, ``left[i]``) in $[0, 2p]^2$:
    $y_i = \mathrm{pad}(x_i)[:, a_i : a_i + H,\ b_i : b_i + W]$."""
    if padding == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    rows = (top[:, None] + torch.arange(h))[:, :, None]          # n x h x 1
    cols = (left[:, None] + torch.arange(w))[:, None, :]         # n x 1 x w
    batch = torch.arange(n)[:, None, None]
    # Advanced indexing moves the indexed axes first: n x h x w x c.
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(images: Tensor, flip: Tensor) -> Tensor:
    """Mirror image ``i`` left-right where ``flip[i]`` is true."""
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    r"""uint8 -> float: $y = (x / 255 - \mu_c) / \sigma_c$ per channel $c$."""
    return (images.to(torch.float32) / 255.0 - mean[:, None, None]) / std[:, None, None]


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of uint8 images, on the [0, 1] scale."""
    x = images.to(torch.float64) / 255.0
    dims = (0, 2, 3)
    return x.mean(dims).to(torch.float32), x.std(dims).clamp_min(1e-6).to(torch.float32)


@dataclass
class AugmentDraw:
    """The random choices for a batch: crop offsets and flips, one entry per image.
    Slicing gives the choices of a sub-batch (a rank's shard of a global batch)."""

    top: Tensor
    left: Tensor
    flip: Tensor

    def __getitem__(self, index: slice) -> AugmentDraw:
        return AugmentDraw(self.top[index], self.left[index], self.flip[index])


@dataclass
class Augment:
    """Training-time pipeline: random crop with zero padding, optional flip, normalisation.

    :meth:`draw` makes the random choices for a whole (global) batch from a generator,
    :meth:`train` applies them; :meth:`eval` only normalises.

    Attributes:
        mean, std: per-channel statistics on the [0, 1] scale (from :func:`channel_stats`).
        crop_padding: padding of the random crop; 0 disables it.
        flip: random horizontal flips (only for data whose classes are mirror-invariant).
    """

    mean: Tensor
    std: Tensor
    crop_padding: int = 0
    flip: bool = False

    def draw(self, n: int, generator: torch.Generator) -> AugmentDraw:
        """Offsets uniform in $[0, 2p]$ and flips with probability 1/2 (never without ``flip``)."""
        top = torch.randint(0, 2 * self.crop_padding + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * self.crop_padding + 1, (n,), generator=generator)
        flip = (torch.rand(n, generator=generator) < 0.5) & self.flip
        return AugmentDraw(top, left, flip)

    def train(self, images: Tensor, draw: AugmentDraw) -> Tensor:
        images = random_crop(images, self.crop_padding, draw.top, draw.left)
        if self.flip:
            images = random_flip(images, draw.flip)
        return normalize(images, self.mean, self.std)

    def eval(self, images: Tensor) -> Tensor:
        return normalize(images, self.mean, self.std)
