"""PyTorch round trips: a module's ``state_dict`` out to the service, weights from it back into the module.

Needs the ``torch`` extra (``pip install "fma-client[torch]"``). Tensors go by their ``state_dict`` names
with their shapes and dtypes (as safetensors); coming back, each is cast to the dtype the module holds (an
aggregate of integer buffers, such as BatchNorm's ``num_batches_tracked``, is a float64 mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fma_client.clients import WebClient
from fma_client.weights import check_same_tensors


def to_arrays(source: torch.nn.Module | Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """NumPy arrays of a module's ``state_dict`` (or of a ``state_dict``), by name (CPU tensors: not copied)."""
    state_dict = source.state_dict() if isinstance(source, torch.nn.Module) else source
    unstored = sorted(name for name, tensor in state_dict.items() if tensor.dtype in (torch.bfloat16, torch.bool))
    if unstored:
        # NumPy has no bfloat16, and the service aggregates neither it nor bool: say so before sending.
        raise ValueError(f"tensors {unstored} are bfloat16 or bool, which the service does not store: convert them")
    return {name: tensor.detach().cpu().numpy() for name, tensor in state_dict.items()}


def send_state_dict(
    client: WebClient, source: torch.nn.Module | Mapping[str, torch.Tensor], **kwargs: Any
) -> dict[str, Any]:
    """Send a module's ``state_dict`` (or a ``state_dict``) as an update (``kwargs``: ``num_examples``, ...)."""
    return client.send_update(to_arrays(source), **kwargs)


def load_weights(module: torch.nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Load weights from the service (a mapping of names to arrays) into ``module``, in its own dtypes.

    Raises
    ------
    ValueError
        When the names or shapes differ from the module's ``state_dict`` (naming them); nothing is loaded then.
    """
    current = module.state_dict()
    check_same_tensors({name: tuple(tensor.shape) for name, tensor in current.items()}, weights)
    module.load_state_dict(
        {name: torch.as_tensor(np.asarray(weights[name])).to(tensor.dtype) for name, tensor in current.items()}
    )
