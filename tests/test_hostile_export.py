"""Hostile requests to an exported SavedModel, through `tf.saved_model.load`.

Hypothesis draws requests whose inputs are valid or not: batch sizes from 0 to beyond the export's
`max_batch`, inputs that disagree on the batch, seeds, labels and pixel values anywhere in their
dtype's range, every float32 temperature (NaN, inf, 0, subnormals). An independent oracle (numpy, over
the documented ranges) says which faults a request holds. A request with a fault must be refused by
the graph (`InvalidArgumentError`) with one of their messages; a valid one must give what the Keras
model gives (`kp.sample`, `kp.complete`, `kp.log_prob`), and a batch of 0 empty outputs.
"""

import hypothesis
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_model
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import keras_pixelcnn as kp
from keras_pixelcnn.export import export_savedmodel

SIZE, CLASSES, MAX_BATCH = 4, 3, 3
SHAPE = (SIZE, SIZE, 1)
MIN_TEMPERATURE = np.float32(1e-30)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny class-conditional PixelCNN, its export (at most MAX_BATCH images a request), loaded back."""
    model = tiny_model("pixelcnn", 1, num_classes=CLASSES, size=SIZE)
    path = export_savedmodel(model, str(tmp_path_factory.mktemp("serving")), "fuzz", 1, max_batch=MAX_BATCH)
    return model, tf.saved_model.load(path).signatures


# --- Requests and the oracle -----------------------------------------------------------------------

INT64 = st.integers(-2**63, 2**63 - 1)
# Per input: (values in the documented range, values anywhere in the dtype).
ELEMENTS = {
    "seed": (st.integers(0, 2**32 - 1), INT64),
    "label": (st.integers(0, CLASSES - 1), INT64),
    "temperature": (st.floats(0.125, 16, width=32), st.floats(width=32)),
    "images": (st.integers(0, 255), st.integers(-2**31, 2**31 - 1)),
    "known_mask": (st.booleans(), st.booleans()),
}
DTYPES = {"seed": np.int64, "label": np.int64, "temperature": np.float32, "images": np.int32, "known_mask": np.bool_}


@st.composite
def requests(draw, inputs):
    """{input: array}; the first input sets the batch. Each input is mostly in range and mostly agrees
    with the batch, so that about half the requests are valid."""
    batch = draw(st.integers(0, MAX_BATCH + 1))
    request = {}
    for name in inputs:
        count = batch if name == inputs[0] else draw(st.sampled_from([batch] * 6 + [batch + 1, max(batch - 1, 0)]))
        in_range, anything = ELEMENTS[name]
        elements = in_range if draw(st.integers(0, 5)) else st.one_of(in_range, anything)
        shape = (count,) + (SHAPE if name in ("images", "known_mask") else ())
        request[name] = draw(arrays(DTYPES[name], shape, elements=elements))
    return request


def faults(request):
    """The messages the graph may refuse `request` with; empty for a valid request."""
    names = list(request)
    batch = len(request[names[0]])
    found = {f"Expected one {name} per image" for name in names[1:] if len(request[name]) != batch}
    if batch > MAX_BATCH:
        found.add(f"Expected at most {MAX_BATCH} images per request")
    seed, label = request.get("seed", np.zeros(0)), request.get("label", np.zeros(0))
    temperature, images = request.get("temperature", np.ones(1, np.float32)), request.get("images", np.zeros(0))
    checks = {"Expected seed >= 0": seed < 0, "Expected seed < 2**32": seed >= 2**32,
              "Expected label >= 0": label < 0, f"Expected label < {CLASSES}": label >= CLASSES,
              "Expected temperature to be a finite number >= 1e-30":
                  ~(np.isfinite(temperature) & (temperature >= MIN_TEMPERATURE)),
              "Expected images in [0, 255]": (images < 0) | (images > 255)}
    return found | {message for message, bad in checks.items() if np.any(bad)}


def call(signatures, name, request):
    return {key: value.numpy() for key, value in
            signatures[name](**{key: tf.constant(value) for key, value in request.items()}).items()}


def answers_or_refuses(signatures, name, request, expected):
    """Call `name`: a refusal naming one of the request's faults, or `expected(request)` when it has none."""
    messages = faults(request)
    if hypothesis.currently_in_test_context():  # --hypothesis-show-statistics: how many were valid
        hypothesis.event("refused" if messages else f"answered {len(next(iter(request.values())))} images")
    if messages:
        with pytest.raises(tf.errors.InvalidArgumentError) as refused:
            call(signatures, name, request)
        assert any(message in str(refused.value) for message in messages), (messages, str(refused.value)[-600:])
        return None
    result = call(signatures, name, request)
    for key, value in expected(request).items():
        assert result[key].dtype == value.dtype and result[key].shape == value.shape, key
        if value.dtype == np.uint8:
            np.testing.assert_array_equal(result[key], value)
        else:
            np.testing.assert_allclose(result[key], value, rtol=1e-5, atol=1e-4)
    return result


# --- The fuzz tests --------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(request=requests(("seed", "temperature", "label")))
def test_sample_with_temperature(served, request):
    model, signatures = served

    def expected(request):
        drawn = [kp.sample(model, 1, seed=int(s), labels=int(l), temperature=float(t))
                 for s, t, l in zip(request["seed"], request["temperature"], request["label"])]
        return {"images": np.concatenate(drawn) if drawn else np.zeros((0,) + SHAPE, np.uint8)}

    answers_or_refuses(signatures, "sample_with_temperature", request, expected)


@settings(max_examples=25, deadline=None)
@given(request=requests(("images", "label")))
def test_log_prob(served, request):
    model, signatures = served

    def expected(request):
        log_prob = (kp.log_prob(model, request["images"], request["label"]) if len(request["images"])
                    else np.zeros(0))
        log_prob = np.asarray(log_prob, np.float32)
        return {"log_prob": log_prob, "bits_per_dim": -log_prob / np.float32(np.prod(SHAPE) * np.log(2))}

    answers_or_refuses(signatures, "log_prob", request, expected)


@settings(max_examples=20, deadline=None)
@given(request=requests(("images", "known_mask", "seed", "label")))
def test_complete(served, request):
    model, signatures = served

    def expected(request):
        filled = [kp.complete(model, request["images"][i:i + 1], request["known_mask"][i:i + 1],
                              seed=int(request["seed"][i]), labels=int(request["label"][i]))
                  for i in range(len(request["images"]))]
        return {"images": np.concatenate(filled) if filled else np.zeros((0,) + SHAPE, np.uint8)}

    result = answers_or_refuses(signatures, "complete", request, expected)
    if result is not None:
        known = request["known_mask"]
        np.testing.assert_array_equal(result["images"][known], request["images"][known])


def _one(seed=1, label=0, temperature=1.0):
    return {"seed": np.array([seed], np.int64), "temperature": np.array([temperature], np.float32),
            "label": np.array([label], np.int64)}


# The edges of each range, which a few random examples may miss.
EDGES = {"nan": _one(temperature=np.nan), "inf": _one(temperature=np.inf), "-inf": _one(temperature=-np.inf),
         "zero": _one(temperature=0.0), "minus-zero": _one(temperature=-0.0), "negative": _one(temperature=-1.0),
         "subnormal": _one(temperature=1e-40), "below-minimum": _one(temperature=9e-31),
         "minimum": _one(temperature=1e-30), "float32-max": _one(temperature=3.4e38),
         "seed-2**32-1": _one(seed=2**32 - 1), "seed-2**32": _one(seed=2**32), "seed--1": _one(seed=-1),
         "seed-int64-min": _one(seed=-2**63), "label-2": _one(label=CLASSES - 1), "label-3": _one(label=CLASSES),
         "label--1": _one(label=-1), "label-int64-max": _one(label=2**63 - 1)}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_the_edges_of_each_range(served, case):
    model, signatures = served
    request = EDGES[case]
    answers_or_refuses(signatures, "sample_with_temperature", request, lambda request: {"images": kp.sample(
        model, 1, seed=int(request["seed"][0]), labels=int(request["label"][0]),
        temperature=float(request["temperature"][0]))})


EMPTY = {"seed": np.zeros(0, np.int64), "label": np.zeros(0, np.int64), "temperature": np.zeros(0, np.float32),
         "images": np.zeros((0,) + SHAPE, np.int32), "known_mask": np.zeros((0,) + SHAPE, bool)}
EMPTY_INPUTS = {"serving_default": ("seed", "label"), "sample": ("seed", "label"),
                "sample_with_temperature": ("seed", "label", "temperature"), "log_prob": ("images", "label"),
                "complete": ("images", "known_mask", "seed", "label")}


@pytest.mark.parametrize("name", sorted(EMPTY_INPUTS))
def test_an_empty_batch_gives_empty_outputs(served, name):
    _, signatures = served
    outputs = call(signatures, name, {key: EMPTY[key] for key in EMPTY_INPUTS[name]})
    if name == "log_prob":
        assert outputs["log_prob"].shape == outputs["bits_per_dim"].shape == (0,)
    else:
        assert outputs["images"].dtype == np.uint8 and outputs["images"].shape == (0,) + SHAPE


# Inputs of the wrong rank or size: refused by the graph, naming the input and the shape it expects.
BAD_SHAPES = {
    "seed-rank-2": ("sample", {"seed": np.zeros((1, 1), np.int64), "label": np.zeros(1, np.int64)},
                    "Shape of tensor seed [1,1] is not compatible with expected shape [?]"),
    "label-rank-0": ("sample", {"seed": np.zeros(1, np.int64), "label": np.int64(0)},
                     "Shape of tensor label [] is not compatible"),
    "images-too-tall": ("log_prob", {"images": np.zeros((1, SIZE + 1, SIZE, 1), np.int32), "label": np.zeros(1, np.int64)},
                        f"Shape of tensor images [1,{SIZE + 1},{SIZE},1] is not compatible with expected shape "
                        f"[?,{SIZE},{SIZE},1]"),
    "images-no-channels": ("log_prob", {"images": np.zeros((1, SIZE, SIZE), np.int32), "label": np.zeros(1, np.int64)},
                           "Shape of tensor images"),
    "mask-rank-3": ("complete", {"images": np.zeros((1,) + SHAPE, np.int32), "known_mask": np.zeros(SHAPE, bool),
                                 "seed": np.zeros(1, np.int64), "label": np.zeros(1, np.int64)},
                    "Shape of tensor known_mask"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHAPES))
def test_inputs_of_the_wrong_shape_are_refused_by_name(served, case):
    name, request, message = BAD_SHAPES[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[").replace("?", r"\?")):
        call(served[1], name, request)


# The wrong dtype: the loaded signature refuses the call before the graph runs (TF Serving refuses
# such a request the same way).
BAD_DTYPES = {
    "float-label": ("sample", {"seed": np.zeros(1, np.int64), "label": np.zeros(1, np.float64)}),
    "int32-seed": ("sample", {"seed": np.zeros(1, np.int32), "label": np.zeros(1, np.int64)}),
    "uint8-images": ("log_prob", {"images": np.zeros((1,) + SHAPE, np.uint8), "label": np.zeros(1, np.int64)}),
    "float64-temperature": ("sample_with_temperature", {"seed": np.zeros(1, np.int64), "label": np.zeros(1, np.int64),
                                                        "temperature": np.ones(1, np.float64)}),
    "int-mask": ("complete", {"images": np.zeros((1,) + SHAPE, np.int32), "known_mask": np.zeros((1,) + SHAPE, np.int32),
                              "seed": np.zeros(1, np.int64), "label": np.zeros(1, np.int64)}),
}


@pytest.mark.parametrize("case", sorted(BAD_DTYPES))
def test_inputs_of_the_wrong_dtype_are_refused(served, case):
    name, request = BAD_DTYPES[case]
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError), match="(int|float|bool)"):
        call(served[1], name, request)


def test_max_batch_is_checked_when_exporting(tmp_path):
    keras.utils.set_random_seed(0)
    model = kp.build_model("pixelcnn", SHAPE, filters=4, num_layers=1)
    for bad in (0, -1, 65537, 2.5, True, "8"):
        with pytest.raises(ValueError, match=r"--max-batch to be an integer in \[1, 65536\]"):
            export_savedmodel(model, str(tmp_path), "m", 1, max_batch=bad)
    assert list(tmp_path.iterdir()) == []


def test_tflite_refuses_labels_out_of_range_instead_of_wrapping(tmp_path):
    """TFLite has no assertion op: a label outside [0, K) is sent out of the embedding's bounds, so the
    interpreter refuses it; -1 used to wrap to class K - 1 and 2**32 to class 0."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_pixelcnn.export import export_tflite

    model = tiny_model("pixelcnn", 1, num_classes=CLASSES, size=SIZE)
    export_tflite(model, str(tmp_path / "m.tflite"), batch_size=1)
    runner = Interpreter(model_path=str(tmp_path / "m.tflite")).get_signature_runner("log_prob")
    image = np.random.default_rng(0).integers(0, 256, (1,) + SHAPE).astype(np.uint8)
    for label in range(CLASSES):
        np.testing.assert_allclose(runner(images=image, label=np.array([label], np.int64))["log_prob"],
                                   kp.log_prob(model, image, [label]), rtol=1e-5)
    for label in (-1, -CLASSES, CLASSES, 2**32, 2**63 - 1):
        with pytest.raises(RuntimeError, match="out of bounds"):
            runner(images=image, label=np.array([label], np.int64))
