"""The one place tensorflow-gan is imported: `from ylg_tf.tfgan_import import tfgan`.

TF-GAN 2.1.0 (the last release) provides the FID/IS math and the hinge losses on both supported stacks.
On TensorFlow 2.15 (the paper stack) it imports as it is. On TensorFlow >= 2.16 its package `__init__`
fails before any metric is reached: it imports its Estimator and train-hook modules, whose classes subclass
`tf.estimator.Estimator`, `tf.estimator.SessionRunHook` and `tf.compat.v1.estimator.tpu.TPUEstimator`,
and `tf.estimator` was removed from TensorFlow in 2.16. This module's shim, used only when
`tf.estimator` is missing:

1. imports TF-GAN's own dependencies first (tensorflow_probability, tensorflow_hub): importing
   tensorflow_probability replaces the `tf.compat.v1` module object, which would drop an attribute set
   before it;
2. sets empty placeholder classes under exactly those three names, imports tensorflow_gan, and removes the
   placeholders again, so TensorFlow's namespace looks as before. TF-GAN's Estimator and hook classes are
   then unusable (nothing here uses them); `tfgan.eval` and `tfgan.losses` are TF-GAN's unchanged code.

What TF-GAN's code itself cannot do on TF >= 2.16: `tfgan.eval.classifier_fn_from_tfhub` (and so
`run_inception`) flattens through `tf.compat.v1.layers`, which is Keras 3's there and raises. ylg_tf does not
use it: `inception.py` loads the classifier with tensorflow_hub itself and flattens the same way.

TF-GAN also imports `distutils`, gone from Python 3.12; setuptools provides it (the current stack pins
`setuptools<81`, whose `pkg_resources` tensorflow-hub 0.16.1 still imports).
"""

import types
import warnings

import tensorflow as tf


def _import_with_estimator_placeholders():
    with warnings.catch_warnings():  # tensorflow-hub warns that pkg_resources is deprecated
        warnings.simplefilter("ignore")
        import tensorflow_hub  # noqa: F401
        import tensorflow_probability  # noqa: F401

        placeholder = types.ModuleType("tensorflow.estimator")
        placeholder.Estimator = type("Estimator", (), {})
        placeholder.SessionRunHook = type("SessionRunHook", (), {})
        tpu_placeholder = types.SimpleNamespace(TPUEstimator=type("TPUEstimator", (), {}))
        tf.estimator = placeholder
        tf.compat.v1.estimator = types.SimpleNamespace(tpu=tpu_placeholder)
        try:
            import tensorflow_gan
        finally:
            del tf.estimator
            del tf.compat.v1.estimator
    return tensorflow_gan


def _import_tfgan():
    if hasattr(tf, "estimator"):  # TensorFlow <= 2.15, with tensorflow-estimator
        import tensorflow_gan

        return tensorflow_gan
    return _import_with_estimator_placeholders()


TFGAN_WAS_SHIMMED = not hasattr(tf, "estimator")
tfgan = _import_tfgan()
