"""Keras 3 round trips: a model's weights out to the service, weights from it back into the model.

Needs the ``keras`` extra (``pip install "fma-client[keras]"``) and a Keras backend (``KERAS_BACKEND``:
``torch``, ``jax`` or ``tensorflow``). Each variable goes by its layer's position and its own name
(``layers.0.kernel``, ``layers.1.moving_mean``) with its shape and dtype; coming back, each is cast to the
variable's dtype. Not by ``variable.path``: it holds the layers' names, which Keras numbers per process
(``dense``, ``dense_1``), so two instances of one architecture would not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from fma_client.clients import WebClient
from fma_client.weights import check_same_tensors


def named_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """The model's variables (trainable or not), by layer position and name; a repeated name gets its index."""
    named: dict[str, keras.Variable] = {}
    for position, layer in enumerate(model.layers):
        for index, variable in enumerate(layer.weights):
            name = f"layers.{position}.{variable.name}"
            named[f"{name}.{index}" if name in named else name] = variable
    return named


def to_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """NumPy arrays of the model's weights (trainable or not), by layer position and name."""
    return {name: keras.ops.convert_to_numpy(variable.value) for name, variable in named_variables(model).items()}


def send_weights(client: WebClient, model: keras.Model, **kwargs: Any) -> dict[str, Any]:
    """Send the model's weights as an update (``kwargs``: ``num_examples``, ``base_aggregate``)."""
    return client.send_update(to_arrays(model), **kwargs)


def load_weights(model: keras.Model, weights: Mapping[str, np.ndarray]) -> None:
    """Assign weights from the service (names as ``to_arrays`` gives them, to arrays) to the model's variables.

    Raises
    ------
    ValueError
        When the names or shapes differ from the model's variables (naming them); nothing is assigned then.
    """
    variables = named_variables(model)
    check_same_tensors({name: tuple(variable.shape) for name, variable in variables.items()}, weights)
    for name, variable in variables.items():
        variable.assign(np.asarray(weights[name]).astype(variable.dtype))
