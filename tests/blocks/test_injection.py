"""Arguments are filled from upstream outputs, context and variables, by clear rules."""

from __future__ import annotations

import pytest

from treadle import data_loader, transformer
from treadle.blocks.decorators import MARK
from treadle.blocks.injection import InjectionPlan
from treadle.errors import UserInputError

CONTEXT = {"execution_date": "E", "logger": "L", "run_id": "R", "variables": {"v": 1}}


def call(func, inputs=(), variables=None, **kw):
    args, kwargs = InjectionPlan.of(func).arguments(list(inputs), CONTEXT, variables or {}, **kw)
    return func(*args, **kwargs)


def test_upstream_outputs_arrive_positionally_in_order():
    def f(a, b):
        return (a, b)

    assert call(f, [1, 2]) == (1, 2)


def test_context_by_name_in_any_position():
    def f(df, execution_date, *, logger):
        return (df, execution_date, logger)

    assert call(f, ["df"]) == ("df", "E", "L")


def test_kwargs_gets_context_and_variables():
    def f(df, **kwargs):
        return kwargs

    got = call(f, [1], {"month": "2020-10"})
    assert got["month"] == "2020-10" and got["execution_date"] == "E" and got["run_id"] == "R"


def test_star_args_takes_every_remaining_input():
    def f(first, *rest):
        return (first, rest)

    assert call(f, [1, 2, 3]) == (1, (2, 3))


def test_named_parameter_from_a_variable_else_its_default():
    def f(*, month, limit=10):
        return (month, limit)

    assert call(f, [], {"month": "2020-10"}) == ("2020-10", 10)
    assert call(f, [], {"month": "m", "limit": 3}) == ("m", 3)


def test_default_before_context_parameter_keeps_its_place():
    def f(df, limit=10, execution_date=None):
        return (df, limit, execution_date)

    assert call(f, ["df"]) == ("df", 10, "E")


def test_unfilled_parameter_is_a_clear_error():
    def f(df, other):
        return df

    with pytest.raises(UserInputError, match="parameter 'other' has no value"):
        call(f, ["df"])


def test_too_many_inputs_is_a_clear_error_unless_lenient():
    def f(df):
        return df

    with pytest.raises(UserInputError, match="takes 1 upstream input but the pipeline gives it 2"):
        call(f, [1, 2])
    assert call(f, [1, 2], strict=False) == 1


def test_decorators_return_the_function_unchanged():
    @transformer
    def double(x):
        return x * 2

    assert double(4) == 8
    assert getattr(double, MARK).role == "transformer"
    assert getattr(data_loader(lambda: 1), MARK).role == "data_loader"
