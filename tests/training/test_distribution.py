"""ylg_tf.training.distribution: a TPU that cannot be used is a one-line StrategyError naming it."""

import urllib.error

import pytest
import tensorflow as tf

from ylg_tf.training import distribution


def test_a_tpu_name_that_cannot_be_resolved_is_named_in_one_line(monkeypatch):
    def unresolvable(tpu=None, **kwargs):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", unresolvable)
    with pytest.raises(distribution.StrategyError) as error:
        distribution.create_strategy("my-tpu")
    message = str(error.value)
    assert message.startswith("TPU 'my-tpu' cannot be used: ") and "Name or service not known" in message
    assert "\n" not in message
