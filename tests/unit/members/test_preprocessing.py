"""Preprocessing steps as JSON: the numbers the network sees are the ones scikit-learn's scalers
and VecNormalize gave, and a malformed file is refused saying what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from tickerserve.members.preprocessing import Preprocessing, Step
from tickerserve.publishing.conversion.preprocessors import from_preprocessor


def data(rows: int = 200, width: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)) * rng.uniform(0.1, 30, size=width) + 7
    x[rng.random(x.shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize(
    "scaler",
    [
        StandardScaler(),
        MinMaxScaler(),
        MinMaxScaler(clip=True),
        RobustScaler(),
        StandardScaler(with_mean=False),
        RobustScaler(with_centering=False),
    ],
    ids=lambda s: repr(s),
)
def test_steps_give_exactly_what_the_scikit_learn_objects_give(scaler):
    # Given an imputer and a scaler fitted on raw features
    x = data()
    imputer = SimpleImputer(strategy="median").fit(x)
    scaler.fit(imputer.transform(x))
    # When their steps (as JSON, read back) run on other raw values, a window at a time
    steps = from_preprocessor(
        {"imputer": imputer, "scaler": scaler}, columns=None, width=4, label="preprocessor.pkl"
    )
    read = Preprocessing.from_json(steps.to_json(), (5, 4))
    fresh = data(50, seed=1) * 1.5
    mine = read.apply(fresh.reshape(10, 5, 4))
    # Then every number equals scikit-learn's, bit for bit
    theirs = scaler.transform(imputer.transform(fresh)).reshape(10, 5, 4)
    np.testing.assert_array_equal(mine, theirs)
    assert read.fills_missing


def test_apply_leaves_the_callers_rows_alone():
    steps = Preprocessing(
        (
            Step("fill_missing", values=np.array([1.0, 2.0])),
            Step("subtract", values=np.array([1.0, 1.0])),
        )
    )
    rows = np.array([[np.nan, 5.0]])
    out = steps.apply(rows)
    np.testing.assert_array_equal(out, [[0.0, 4.0]])
    assert np.isnan(rows[0, 0]) and rows[0, 1] == 5.0


def test_clip_if_infinite_clips_only_the_windows_that_overflowed():
    # Given the seed's clip (+-1e6 wherever scaling overflowed) and two windows
    steps = Preprocessing(
        (
            Step("divide", values=np.array([1e-300, 1.0])),
            Step("clip_if_infinite", low=np.asarray(-1e6), high=np.asarray(1e6)),
        )
    )
    windows = np.array([[[1e10, 3e6], [0.0, 1.0]], [[1e-300, 3e6], [0.0, 1.0]]])
    # When applied
    out = steps.apply(windows)
    # Then the window that overflowed is clipped as a whole, the other is untouched
    np.testing.assert_array_equal(out[0], [[1e6, 1e6], [0.0, 1.0]])
    np.testing.assert_array_equal(out[1], [[1.0, 3e6], [0.0, 1.0]])


def test_vecnormalize_steps_follow_its_formula():
    # Given VecNormalize's statistics over a (2, 3) observation
    rng = np.random.default_rng(2)
    mean, var = rng.normal(size=(2, 3)), rng.uniform(0.01, 4, size=(2, 3))
    steps = Preprocessing(
        (
            Step("subtract", values=mean),
            Step("divide", values=np.sqrt(var + 1e-8)),
            Step("clip", low=np.asarray(-10.0), high=np.asarray(10.0)),
        )
    )
    obs = rng.normal(scale=20, size=(7, 2, 3))
    # Then the result is clip((obs - mean) / sqrt(var + eps), -clip, clip), as SB3 computes it
    want = np.clip((obs - mean) / np.sqrt(var + 1e-8), -10.0, 10.0)
    np.testing.assert_array_equal(Preprocessing.from_json(steps.to_json(), (2, 3)).apply(obs), want)


def test_inverse_maps_network_inputs_back_to_raw_values():
    steps = Preprocessing(
        (Step("subtract", values=np.array([3.0])), Step("divide", values=np.array([2.0])))
    )
    raw = steps.inverse(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(steps.apply(raw), [[0.0], [1.0]])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"steps": [{"op": "square", "values": [1]}]}, "each step needs an op"),
        ({"steps": [{"op": "divide", "values": [1.0, 0.0]}]}, "divide by zero"),
        ({"steps": [{"op": "subtract", "values": [1.0, 2.0, 3.0]}]}, "do not fit an input"),
        ({"steps": [{"op": "add", "values": ["a", "b"]}]}, "values must be numbers"),
        ({"steps": [{"op": "clip", "low": 1.0, "high": -1.0}]}, "low above high"),
        (
            {"steps": [{"op": "add", "values": 1.0}, {"op": "fill_missing", "values": 0.0}]},
            "fill_missing can only be",
        ),
        ({"step": []}, "a list of steps"),
    ],
)
def test_malformed_preprocessing_is_refused(body, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing.from_json(json.dumps(body).encode(), (4, 2))


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite numbers"):
        Preprocessing.from_json(b'{"steps": [{"op": "add", "values": [NaN, 1.0]}]}', (2,))


def _steps(*pairs: tuple) -> Preprocessing:
    out = []
    for op, *args in pairs:
        if op in ("clip", "clip_if_infinite"):
            out.append(Step(op, low=np.asarray(args[0]), high=np.asarray(args[1])))
        else:
            out.append(Step(op, values=np.asarray(args[0])))
    return Preprocessing(tuple(out))


FILL = ("fill_missing", [1.5, -2.0, 0.25])
COMPILED_CASES = {
    "seed imputer, scaler, overflow clip": _steps(
        FILL, ("subtract", [1.0, 2.0, 3.0]), ("divide", [1e-300, 3.0, 0.5]),
        ("clip_if_infinite", -1e6, 1e6),
    ),
    "VecNormalize": _steps(("subtract", [1.0, 2.0, 3.0]), ("divide", [0.5, 3.0, 7.0]),
                           ("clip", -10.0, 10.0)),
    "MinMaxScaler(clip=True)": _steps(FILL, ("multiply", [0.5, 1e300, 2.0]), ("add", 0.25),
                                      ("clip", 0.0, 1.0)),
    "clip first, per element": _steps(("clip", [[-1.0] * 3] * 2, 5.0), ("add", [1.0, -1.0, 0.0])),
    "clip_if_infinite midway (always apply)": _steps(
        ("divide", 1e-300), ("clip_if_infinite", -1e6, 1e6), ("add", 1.0)
    ),
    "fill only": _steps(FILL),
    "no steps": Preprocessing(()),
}  # fmt: skip


# (the module's own filter of these is set when it is imported, here under pytest's own)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("steps", COMPILED_CASES.values(), ids=COMPILED_CASES.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_steps_give_apply_bit_for_bit_in_the_network_dtype(steps, dtype):
    # Given windows of two rows of three features: plain ones, and ones with NaN, infinities,
    # numbers that overflow when scaled, and signed zeros
    rng = np.random.default_rng(5)
    plain = rng.normal(scale=50, size=(40, 2, 3))
    odd = plain.copy()
    flat = odd.reshape(-1)
    picks = rng.choice(flat.size, size=60, replace=False)
    flat[picks[:15]] = np.nan
    flat[picks[15:25]] = np.inf
    flat[picks[25:35]] = -np.inf
    flat[picks[35:50]] = 1e306
    flat[picks[50:]] = -0.0
    compiled = steps.compiled(dtype)
    for x in (plain, odd, odd[:1], plain[:1]):
        before = x.copy()
        # When compiled, as a new array and into a buffer the session reads
        mine = compiled(x)
        buffer = np.full(x.shape, 7.0, dtype=dtype)
        into = compiled(x, buffer)
        # Then every number is apply's, cast (NaN where apply has NaN), and x is untouched
        with np.errstate(over="ignore"):  # 1e306 is beyond float32: inf, as in mine
            want = steps.apply(x).astype(dtype)
        assert mine.dtype == dtype and into is buffer
        assert mine.tobytes() == want.tobytes() and buffer.tobytes() == want.tobytes()
        assert x.tobytes() == before.tobytes()
