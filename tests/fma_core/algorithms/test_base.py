"""Registries, argument checking and the call helpers the workflow and the API use."""

import numpy as np
import pytest

from fma_core import algorithms
from fma_core.algorithms import (
    Range,
    _base,
    call_aggregator,
    call_requirement,
    validate_aggregator_args,
    validate_requirement_args,
)
from fma_core.exceptions import ConfigurationError, InvalidArgumentsError
from fma_core.types import AggregationContext, PendingSummary
from tests.fma_core.algorithms.support import single, updates


class TestRegistries:
    def test_every_algorithm_is_registered_on_import(self):
        assert algorithms.aggregators.names() == [
            "average_layers",
            "avg_values_if_data",
            "fed_adam",
            "fed_avg",
            "fed_median",
            "fed_trimmed_mean",
            "fed_yogi",
            "fedbuff",
            "krum",
            "multi_krum",
        ]
        assert algorithms.requirements.names() == ["all_clients", "require_x_updates", "require_x_updates_or_seconds"]

    def test_unknown_aggregator_lists_the_registered_ones(self):
        with pytest.raises(ConfigurationError) as error:
            validate_aggregator_args("fed_sgd", None)

        assert str(error.value) == (
            "Unknown aggregator 'fed_sgd'; registered: average_layers, avg_values_if_data, fed_adam, fed_avg, "
            "fed_median, fed_trimmed_mean, fed_yogi, fedbuff, krum, multi_krum"
        )

    def test_unknown_requirement_lists_the_registered_ones(self):
        with pytest.raises(ConfigurationError) as error:
            validate_requirement_args("every_hour", [])

        assert str(error.value) == (
            "Unknown requirement 'every_hour'; registered: all_clients, require_x_updates, require_x_updates_or_seconds"
        )


class TestValidAggregatorArgs:
    @pytest.mark.parametrize(
        ("name", "args"),
        [
            ("avg_values_if_data", None),
            ("fed_avg", {}),
            ("fed_trimmed_mean", {"beta": 0}),
            ("fed_trimmed_mean", {"beta": 0.49}),
            ("krum", {"f": 0}),
            ("multi_krum", {"f": 2, "m": None}),
            ("multi_krum", {"f": 2, "m": 3}),
            ("fed_adam", {"server_learning_rate": 1, "beta_1": 0, "beta_2": 0.999, "tau": 1e-6}),
            ("fed_yogi", None),
        ],
    )
    def test_accepted(self, name, args):
        validate_aggregator_args(name, args)


class TestInvalidAggregatorArgs:
    @pytest.mark.parametrize(
        ("name", "args", "message"),
        [
            (
                "fed_avg",
                {"beta": 0.1},
                "fed_avg takes no arguments, got 'beta'",
            ),
            (
                "fed_trimmed_mean",
                {"alpha": 0.1, "gamma": 1},
                "fed_trimmed_mean does not take arguments 'alpha', 'gamma'; it takes beta",
            ),
            (
                "fed_adam",
                {"eta": 0.1},
                "fed_adam does not take argument 'eta'; it takes server_learning_rate, beta_1, beta_2, tau",
            ),
            (
                "fed_trimmed_mean",
                {"beta": 0.5},
                "argument 'beta' of fed_trimmed_mean must be at least 0 and less than 0.5, got 0.5",
            ),
            (
                "fed_trimmed_mean",
                {"beta": -0.1},
                "argument 'beta' of fed_trimmed_mean must be at least 0 and less than 0.5, got -0.1",
            ),
            (
                "fed_trimmed_mean",
                {"beta": "0.1"},
                "argument 'beta' of fed_trimmed_mean must be a number, got a string ('0.1')",
            ),
            (
                "fed_trimmed_mean",
                {"beta": True},
                "argument 'beta' of fed_trimmed_mean must be a number, got a boolean (True)",
            ),
            (
                "fed_trimmed_mean",
                {"beta": None},
                "argument 'beta' of fed_trimmed_mean must be a number, got null (None)",
            ),
            (
                "fed_adam",
                {"server_learning_rate": 10**400},
                f"argument 'server_learning_rate' of fed_adam must be a finite number, got {10**400!r}",
            ),
            (
                "fed_adam",
                {"tau": float("inf")},
                "argument 'tau' of fed_adam must be a finite number, got inf",
            ),
            (
                "krum",
                {"f": 1.5},
                "argument 'f' of krum must be an integer, got a number (1.5)",
            ),
            (
                "krum",
                {"f": -1},
                "argument 'f' of krum must be at least 0, got -1",
            ),
            (
                "krum",
                None,
                "krum needs argument 'f' in aggregator_args",
            ),
            (
                "multi_krum",
                {"f": 1, "m": 0},
                "argument 'm' of multi_krum must be at least 1, got 0",
            ),
            (
                "multi_krum",
                {"f": 1, "m": [2]},
                "argument 'm' of multi_krum must be an integer or null, got a list ([2])",
            ),
            (
                "fed_adam",
                {"server_learning_rate": 0},
                "argument 'server_learning_rate' of fed_adam must be greater than 0, got 0",
            ),
            (
                "fed_yogi",
                {"beta_2": 1},
                "argument 'beta_2' of fed_yogi must be at least 0 and less than 1, got 1",
            ),
            (
                "fed_avg",
                [1],
                "aggregator_args of fed_avg must be a JSON object of keyword arguments or null, got a list",
            ),
        ],
    )
    def test_message_names_the_problem(self, name, args, message):
        with pytest.raises(InvalidArgumentsError) as error:
            validate_aggregator_args(name, args)

        assert str(error.value) == message


class TestRequirementArgs:
    @pytest.mark.parametrize(
        ("name", "args"),
        [
            ("all_clients", None),
            ("all_clients", []),
            ("require_x_updates", [3]),
            ("require_x_updates", {"num_updates": 3}),
            ("require_x_updates_or_seconds", [3, 60]),
            ("require_x_updates_or_seconds", [3, 0.5]),
            ("require_x_updates_or_seconds", {"seconds": 60, "num_updates": 3}),
        ],
    )
    def test_accepted(self, name, args):
        validate_requirement_args(name, args)

    @pytest.mark.parametrize(
        ("name", "args", "message"),
        [
            ("all_clients", [1], "all_clients takes no arguments, got [1]"),
            (
                "require_x_updates",
                [3, 4],
                "require_x_updates takes at most 1 positional argument (num_updates), got 2",
            ),
            ("require_x_updates", [], "require_x_updates needs argument 'num_updates' in requirement_args"),
            ("require_x_updates", None, "require_x_updates needs argument 'num_updates' in requirement_args"),
            ("require_x_updates", [0], "argument 'num_updates' of require_x_updates must be at least 1, got 0"),
            (
                "require_x_updates",
                {"x": 3},
                "require_x_updates does not take argument 'x'; it takes num_updates",
            ),
            (
                "require_x_updates_or_seconds",
                [3],
                "require_x_updates_or_seconds needs argument 'seconds' in requirement_args",
            ),
            (
                "require_x_updates_or_seconds",
                {},
                "require_x_updates_or_seconds needs arguments 'num_updates', 'seconds' in requirement_args",
            ),
            (
                "require_x_updates_or_seconds",
                [3, -1],
                "argument 'seconds' of require_x_updates_or_seconds must be at least 0, got -1",
            ),
            (
                "require_x_updates",
                "3",
                "requirement_args of require_x_updates must be a JSON list of positional arguments, "
                "a JSON object of keyword arguments or null, got a string",
            ),
        ],
    )
    def test_message_names_the_problem(self, name, args, message):
        with pytest.raises(InvalidArgumentsError) as error:
            validate_requirement_args(name, args)

        assert str(error.value) == message


class TestCallHelpers:
    def test_call_aggregator_passes_checked_keywords(self):
        # Prepare: with beta 0.25 of 4 updates, one value is trimmed at each end of every coordinate.
        stream = updates(single([0.0]), single([1.0]), single([2.0]), single([100.0]))

        # Execute
        result = call_aggregator("fed_trimmed_mean", stream, AggregationContext(), {"beta": 0.25})

        # Assert
        np.testing.assert_array_equal(result.weights.layers[0], [1.5])

    def test_call_aggregator_converts_integral_numbers_for_float_arguments(self):
        stream = updates(single([1.0]), single([3.0]))

        result = call_aggregator("fed_trimmed_mean", stream, AggregationContext(), {"beta": 0})

        np.testing.assert_array_equal(result.weights.layers[0], [2.0])

    def test_call_aggregator_rejects_bad_arguments_before_aggregating(self):
        with pytest.raises(InvalidArgumentsError, match=r"^fed_avg takes no arguments, got 'beta'$"):
            call_aggregator("fed_avg", updates(single([1.0])), AggregationContext(), {"beta": 0.1})

    @pytest.mark.parametrize("args", [[2], {"num_updates": 2}])
    def test_call_requirement_takes_positional_and_keyword_args(self, args):
        two_pending = PendingSummary(registered_clients=5, pending_updates=2, clients_with_pending=2)
        one_pending = PendingSummary(registered_clients=5, pending_updates=1, clients_with_pending=1)

        assert call_requirement("require_x_updates", two_pending, args) is True
        assert call_requirement("require_x_updates", one_pending, args) is False

    def test_call_requirement_rejects_bad_arguments(self):
        summary = PendingSummary(registered_clients=1, pending_updates=1, clients_with_pending=1)

        with pytest.raises(InvalidArgumentsError, match=r"^argument 'num_updates' of require_x_updates must be"):
            call_requirement("require_x_updates", summary, [-3])


class TestRange:
    @pytest.mark.parametrize(
        ("interval", "inside", "outside", "words"),
        [
            (Range(low=0), [0, 7], [-0.1], "at least 0"),
            (Range(low=0, low_open=True), [1e-9], [0], "greater than 0"),
            (Range(high=1), [1, -5], [1.1], "at most 1"),
            (Range(low=0, high=0.5, high_open=True), [0, 0.49], [0.5, -1], "at least 0 and less than 0.5"),
        ],
    )
    def test_bounds(self, interval, inside, outside, words):
        assert all(value in interval for value in inside)
        assert not any(value in interval for value in outside)
        assert interval.describe() == words


def test_require_x_updates_or_seconds_names_both_positional_arguments():
    with pytest.raises(InvalidArgumentsError) as error:
        validate_requirement_args("require_x_updates_or_seconds", [1, 2, 3])

    assert str(error.value) == (
        "require_x_updates_or_seconds takes at most 2 positional arguments (num_updates, seconds), got 3"
    )


def test_an_algorithm_argument_must_be_annotated_int_or_float():
    def takes_text(updates, *, context, label: str = "x"):
        raise AssertionError("never called")

    with pytest.raises(TypeError, match=r"^argument 'label' of takes_text must be annotated int or float$"):
        _base._parameters(takes_text)
