"""Checkpoints written atomically, and rebuilding a trained model from one.

A checkpoint is one ``torch.save`` file holding the model's state dict, the model's builder
name and keyword arguments (``model_spec``), the optimizer and scheduler states, the step
counters, the RNG states and the training config: everything a resumed run needs to continue
exactly as if it had never stopped.

Writing goes to a temporary file in the same directory, which is flushed to disk and then
renamed over the target (``os.replace``, atomic on POSIX): a crash at any moment leaves either
the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["capture_rng", "load_checkpoint", "load_model", "restore_rng", "save_checkpoint"]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (on the CPU).

    ``weights_only=False`` because the state holds Python RNG state and the config; load only
    checkpoints you trust, as with any pickle.
    """
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model a checkpoint was trained as (``get_model(name, **kwargs)`` from its
    ``model_spec``) and load its weights; returned in eval mode.

    Raises:
        ValueError: the checkpoint has no ``model_spec`` (the model was not built by name).
    """
    from pocketbnn.models import get_model

    state = load_checkpoint(path)
    spec = state.get("model_spec")
    if not spec:
        raise ValueError(f"{path} has no model_spec: rebuild the model yourself and load state['model']")
    model = get_model(spec["name"], **spec["kwargs"])
    model.load_state_dict(state["model"])
    return model.eval()


def capture_rng() -> dict[str, Any]:
    """The global RNG states: Python's, numpy's, torch's CPU (and CUDA's when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore the states captured by :func:`capture_rng`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
