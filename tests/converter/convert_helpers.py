"""Shared helpers of the converter tests: run torch and the engine on the same input."""

from __future__ import annotations

import numpy as np
import torch

from pocketbnn import engine


def nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy() if x.dim() == 4 else x.numpy())


def run_engine(graph, x: torch.Tensor) -> np.ndarray:
    """Serialize, reload and run: what a deployed model computes."""
    return engine.from_bytes(engine.to_bytes(graph)).run(nhwc(x))


def torch_output(model, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        y = model(x)
    return nhwc(y)


def assert_matches(got: np.ndarray, want: np.ndarray, rel: float | np.ndarray = 1e-4) -> None:
    """Max abs difference below ``rel`` times the output scale (max |want|); ``rel`` may be one
    number or one per image (the first axis)."""
    scale = max(float(np.abs(want).max()), 1e-6)
    diff = np.abs(got - want).reshape(len(want), -1).max(axis=1)
    limit = np.broadcast_to(np.asarray(rel, dtype=np.float64), diff.shape) * scale
    assert (diff <= limit).all(), f"max diff per image {diff}, allowed {limit}, scale {scale:.3g}"
