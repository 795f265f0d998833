"""A federated round with a real PyTorch module or Keras model, run in the frameworks' virtualenv.

Run by ``test_frameworks.py`` as ``python frameworks_journey.py FRAMEWORK URL TOKEN`` (``bfloat16``: only
what a bfloat16 state_dict is told): a developer makes a
model from the framework's initial weights, two clients send theirs (perturbed), the aggregate is loaded
back into a fresh model. It prints JSON: the names, shapes and dtypes of the weights before and after, and
the largest difference between the loaded weights and the mean the clients expect.
"""

import json
import sys

import numpy as np

from fma_client import DeveloperClient, WebClient

SHIFTS = (1.0, 3.0)


def _torch():
    import torch

    from fma_client import pytorch

    def make(seed=0):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 3))

    def describe(module):
        return {name: [list(t.shape), str(t.dtype)] for name, t in module.state_dict().items()}

    def shifted(module, shift):
        with torch.no_grad():
            for tensor in module.state_dict().values():
                if tensor.is_floating_point():
                    tensor.add_(shift)
        return module

    return make, describe, shifted, pytorch.to_arrays, pytorch.send_state_dict, pytorch.load_weights, "state_dict"


def _keras():
    import keras

    from fma_client import keras as fma_keras

    def make(seed=0):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.BatchNormalization()])
        model.add(keras.layers.Dense(3, name="head"))
        return model

    def describe(model):
        return {name: [list(v.shape), str(v.dtype)] for name, v in fma_keras.named_variables(model).items()}

    def shifted(model, shift):
        for variable in model.weights:
            variable.assign(variable.value + shift)
        return model

    def to_arrays(model):
        return fma_keras.to_arrays(model)

    return make, describe, shifted, to_arrays, fma_keras.send_weights, fma_keras.load_weights, "model"


def refused_bfloat16() -> str:
    """The message a bfloat16 state_dict gets (NumPy and the service have no bfloat16)."""
    import torch

    from fma_client import pytorch

    try:
        pytorch.to_arrays({"w": torch.zeros(2, dtype=torch.bfloat16)})
    except ValueError as error:
        return str(error)
    return "accepted"


def main(framework: str, url: str, token: str) -> dict:
    make, describe, shifted, to_arrays, send, load, _ = {"torch": _torch, "keras": _keras}[framework]()
    initial = to_arrays(make())
    developer = DeveloperClient(url, token=token, progress=False)
    model = developer.create_model(
        f"{framework}-round", initial_model=initial, requirement="all_clients", allow_aggregation=True
    )
    clients = [WebClient(model.id, url=url, progress=False) for _ in SHIFTS]
    for client in clients:  # all registered before the first update: the model waits for all its clients
        client.register()
    for client, shift in zip(clients, SHIFTS, strict=True):
        start = make()
        load(start, client.check_for_latest_model()["values"])
        send(client, shifted(start, shift), num_examples=1)
    aggregate = clients[0].wait_for_aggregate(timeout=60)

    loaded = make(seed=1)  # other weights than the answer's, to be replaced
    load(loaded, aggregate["result"])
    got = to_arrays(loaded)
    mean_shift = float(np.mean(SHIFTS))
    errors = {
        name: float(np.max(np.abs(got[name] - (array + mean_shift if array.dtype.kind == "f" else array))))
        for name, array in initial.items()
    }
    wire = {name: [list(array.shape), str(array.dtype)] for name, array in aggregate["result"].items()}
    sent = {name: [list(array.shape), str(array.dtype)] for name, array in initial.items()}
    return {"before": describe(make()), "after": describe(loaded), "sent": sent, "wire": wire, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(refused_bfloat16() if sys.argv[1] == "bfloat16" else main(*sys.argv[1:4])))
