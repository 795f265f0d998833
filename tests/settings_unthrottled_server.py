"""Settings of a local server under a fuzzer: the embedded default with the brakes (throttling) off.

A fuzzer sends thousands of requests a minute as one caller; with the brakes on, most operations would only
ever answer 429 and the fuzz would test the throttle instead of the API. The brakes have their own tests
(``tests/api_service/test_brakes.py``).
"""

from federated_learning_project.settings_local import *  # noqa: F403
from federated_learning_project.settings_local import REST_FRAMEWORK

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": dict.fromkeys(REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]),
}
