"""The Keras layer contract every layer and network of ylg_tf keeps, checked one way (as keras-hub's run_layer_test).

`check_layer_contract(make_layer, inputs, ...)` takes a fresh layer and checks, in this order:
- symbolic call: called on `tf_keras.Input`s with an unknown batch it builds, and its outputs have the
  expected shapes (unless `symbolic=False`: then an eager call builds it);
- weights: the expected numbers of trainable and non-trainable weights;
- eager, symbolic and traced calls agree: in every training mode, the eager call, the functional model built
  on the symbolic call (if any) and a `tf.function` traced with an unknown batch size give the same outputs and leave
  the same state (u vectors, moving statistics); the traced function's output shapes keep the unknown batch;
  in inference the traced function also gives the eager outputs of a one-example batch;
- config round trip: `from_config` of the JSON-encoded `get_config()` gives a layer with the same config and
  the same weight names, and, with the weights copied, identical outputs and identical state after two
  rounds of calls in every training mode.
Every call starts from the same weights, so layers that change state on each call (u_update="always", batch
statistics in training) are compared like with like.
"""

import dataclasses
import json

import numpy as np
import tensorflow as tf
import tf_keras

# State after a call (power-iteration u vectors, moving statistics) compared across eager / traced calls.
STATE_RTOL = 1e-5
STATE_ATOL = 1e-6


@dataclasses.dataclass
class LayerContract:
    """What the check built, for assertions of a layer's own: the layer, its clone, the eager outputs."""

    layer: tf_keras.layers.Layer
    clone: tf_keras.layers.Layer
    eager_outputs: dict  # training mode -> flat list of NumPy outputs


def check_layer_contract(
    make_layer,
    inputs,
    output_shapes,
    trainable_weights,
    non_trainable_weights,
    call_arguments=None,
    training_modes=(False, True),
    prepare=None,
    rtol=1e-6,
    atol=1e-6,
    symbolic=True,
):
    """Checks the contract (module docstring) of the layer `make_layer()` returns; returns a LayerContract.

    inputs: the positional arguments of a call, each an array or a tuple of arrays, all with the same batch
        size (>= 2), e.g. `(images, labels)` for `layer(images, labels)`, `((z, labels),)` for
        `generator((z, labels))`.
    output_shapes: the shape of each output (flattened with tf.nest) with None as the batch,
        e.g. `[(None, 8, 8, 64)]`.
    trainable_weights, non_trainable_weights: the expected numbers of weights.
    call_arguments: keyword arguments of every call besides `training`, e.g. `{"return_attention": True}`.
    training_modes: the values of `training=` to check.
    prepare: `prepare(layer)` once the layer is built, to give its weights non-default values (e.g. a
        non-zero attention scale) so that the outputs depend on every weight.
    rtol, atol: tolerance of eager vs symbolic vs traced outputs, one number or one per output (the config
        round trip must be exact).
    symbolic: False for a subclassed network that is only ever called eagerly or in a tf.function (never put
        in a functional model): Keras converts the whole of its call with autograph for a symbolic call, which
        takes ~40 s for a small generator on 2 CPU cores.
    """
    call_arguments = dict(call_arguments or {})
    output_shapes = [tuple(shape) for shape in output_shapes]
    flat_inputs = [np.asarray(value) for value in tf.nest.flatten(inputs)]
    assert len({len(value) for value in flat_inputs}) == 1 and len(flat_inputs[0]) >= 2, "one batch >= 2"
    one_example = tf.nest.pack_sequence_as(inputs, [value[:1] for value in flat_inputs])
    tolerances = _per_output(rtol, len(output_shapes)), _per_output(atol, len(output_shapes))

    layer = make_layer()
    model = None
    if symbolic:
        symbolic_flat = [tf_keras.Input(value.shape[1:], dtype=tf.as_dtype(value.dtype)) for value in flat_inputs]
        symbolic_outputs = layer(*tf.nest.pack_sequence_as(inputs, symbolic_flat), **call_arguments)
        assert _shapes(symbolic_outputs) == output_shapes, "symbolic call"
        model = tf_keras.Model(symbolic_flat, symbolic_outputs)
    else:
        layer(*inputs, training=False, **call_arguments)
    counts = len(layer.trainable_weights), len(layer.non_trainable_weights)
    assert counts == (trainable_weights, non_trainable_weights), (
        f"weight counts (trainable, non-trainable) {counts}, expected {(trainable_weights, non_trainable_weights)}: "
        f"{[weight.name for weight in layer.weights]}"
    )
    if prepare is not None:
        prepare(layer)
    state = layer.get_weights()

    eager_outputs = {}
    for training in training_modes:
        layer.set_weights(state)
        eager = eager_outputs[training] = _numpy(layer(*inputs, training=training, **call_arguments))
        eager_state = layer.get_weights()

        if model is not None:
            layer.set_weights(state)
            model_outputs = model(flat_inputs, training=training)
            _assert_close(_numpy(model_outputs), eager, *tolerances, f"symbolic model, training={training}")
            _assert_state(layer, eager_state, f"symbolic model, training={training}")

        traced = tf.function(
            lambda *values, training=training: layer(*values, training=training, **call_arguments),
            input_signature=_unknown_batch_signature(inputs),
        )
        traced_shapes = _shapes(traced.get_concrete_function().structured_outputs)
        assert traced_shapes == output_shapes, f"tf.function with an unknown batch, training={training}"
        layer.set_weights(state)
        _assert_close(_numpy(traced(*inputs)), eager, *tolerances, f"tf.function, training={training}")
        _assert_state(layer, eager_state, f"tf.function, training={training}")
        if not training:
            layer.set_weights(state)
            one = _numpy(traced(*one_example))
            _assert_close(one, [output[:1] for output in eager], *tolerances, "tf.function on one example")

    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config, "from_config(get_config()) through JSON"
    clone(*inputs, training=False, **call_arguments)  # builds it; its weights are overwritten next
    assert [weight.name for weight in clone.weights] == [weight.name for weight in layer.weights]
    clone.set_weights(state)
    layer.set_weights(state)
    for training in training_modes * 2:  # the second round starts from the state the first one left
        clone_outputs = _numpy(clone(*inputs, training=training, **call_arguments))
        layer_outputs = _numpy(layer(*inputs, training=training, **call_arguments))
        for index, (clone_output, layer_output) in enumerate(zip(clone_outputs, layer_outputs)):
            np.testing.assert_array_equal(clone_output, layer_output, err_msg=f"clone output {index}")
    for clone_weight, layer_weight, weight in zip(clone.get_weights(), layer.get_weights(), layer.weights):
        np.testing.assert_array_equal(clone_weight, layer_weight, err_msg=f"clone state {weight.name}")
    layer.set_weights(state)
    return LayerContract(layer, clone, eager_outputs)


def _per_output(tolerance, count):
    tolerances = list(tolerance) if isinstance(tolerance, (list, tuple)) else [tolerance] * count
    assert len(tolerances) == count, f"{len(tolerances)} tolerances for {count} outputs"
    return tolerances


def _shapes(outputs):
    return [tuple(output.shape.as_list()) for output in tf.nest.flatten(outputs)]


def _numpy(outputs):
    return [np.asarray(output) for output in tf.nest.flatten(outputs)]


def _unknown_batch_signature(inputs):
    return [
        tf.nest.map_structure(
            lambda value: tf.TensorSpec((None,) + np.shape(value)[1:], tf.as_dtype(np.asarray(value).dtype)),
            argument,
        )
        for argument in inputs
    ]


def _assert_close(actual, expected, rtols, atols, what):
    assert len(actual) == len(expected), what
    for index, (result, reference, rtol, atol) in enumerate(zip(actual, expected, rtols, atols)):
        np.testing.assert_allclose(result, reference, rtol=rtol, atol=atol, err_msg=f"{what}: output {index}")


def _assert_state(layer, expected, what):
    for weight, value, reference in zip(layer.weights, layer.get_weights(), expected):
        np.testing.assert_allclose(
            value, reference, rtol=STATE_RTOL, atol=STATE_ATOL, err_msg=f"{what}: state {weight.name}"
        )
