"""tests/layer_contract.py passes a layer that keeps the contract and fails one that breaks each part of it."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from layer_contract import check_layer_contract


class CountingScale(tf_keras.layers.Layer):
    """outputs = inputs * scale + offset; counts the examples it sees in training (state, like batch norm)."""

    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=input_shape[-1:], initializer="ones")
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        if training:
            self.seen.assign_add(tf.cast(tf.shape(inputs)[0], tf.float32))
        return inputs * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


class ForgetsItsOffset(CountingScale):
    def get_config(self):
        config = super().get_config()
        del config["offset"]
        return config


class NeedsAStaticBatch(CountingScale):
    def call(self, inputs, training=None):
        return tf.reshape(super().call(inputs, training), [inputs.shape[0], -1])  # None with an unknown batch


class DiffersWhenTraced(CountingScale):
    def call(self, inputs, training=None):
        return super().call(inputs, training) + (0.0 if tf.executing_eagerly() else 1.0)


class CountsOnlyEagerly(CountingScale):
    def call(self, inputs, training=None):
        if training and tf.executing_eagerly():
            self.seen.assign_add(1.0)
        return inputs * self.scale + self.offset


INPUTS = (np.arange(6, dtype=np.float32).reshape(3, 2),)


def _check(layer_class, trainable_weights=1):
    def randomize(layer):
        layer.scale.assign([0.5, -2.0])

    return check_layer_contract(
        lambda: layer_class(offset=0.25),
        INPUTS,
        output_shapes=[(None, 2)],
        trainable_weights=trainable_weights,
        non_trainable_weights=1,
        prepare=randomize,
    )


def test_a_layer_that_keeps_the_contract_passes():
    contract = _check(CountingScale)
    np.testing.assert_allclose(contract.eager_outputs[False][0], INPUTS[0] * [0.5, -2.0] + 0.25)
    assert contract.clone.offset == 0.25


@pytest.mark.parametrize(
    "layer_class, trainable_weights, error, message",
    [
        (CountingScale, 2, AssertionError, r"weight counts .* \(1, 1\), expected \(2, 1\)"),
        # Its clone has no offset: the config round trip gives another layer.
        (ForgetsItsOffset, 1, AssertionError, "clone output 0"),
        (NeedsAStaticBatch, 1, TypeError, "needs_a_static_batch"),  # no symbolic call with an unknown batch
        (DiffersWhenTraced, 1, AssertionError, "tf.function, training=False: output 0"),
        (CountsOnlyEagerly, 1, AssertionError, "tf.function, training=True: state counts_only_eagerly/seen"),
    ],
    ids=["weight_count", "config_round_trip", "unknown_batch", "traced_outputs", "traced_state"],
)
def test_a_layer_that_breaks_the_contract_fails(layer_class, trainable_weights, error, message):
    with pytest.raises(error, match=message):
        _check(layer_class, trainable_weights)
