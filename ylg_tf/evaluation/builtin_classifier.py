"""An offline stand-in for Inception on the built-in shapes dataset: a small convnet, trained once and cached.

TF-GAN scores MNIST with its own small MNIST classifier instead of Inception; this module does the same
for `ylg_tf.data.builtin_shapes`, so a first run reports a real quality number without any download. The
classifier is saved as a SavedModel with the Inception module's interface, so evaluation loads it through
the same path as the TF-Hub module (`ylg_tf.evaluation.inception.load_classifier(directory, image_size=None)`) and
scores it with the same IS/FID code:

    module(images [N, H, W, 3] float32 in [-1, 1]) -> {"logits": [N, 10], "pool_3": [N, 128]}

"logits" are the 10 shape/colour classes (so the Inception Score of a generator lies in [1, 10]) and
"pool_3" is the 128-unit penultimate layer, the features the Frechet distance compares.

Network: four 3x3 ReLU convolutions (16, 32, 64, 64 channels, 2x2 max pooling after the first three),
global average pooling, a 128-unit ReLU layer, and the class layer; no batch norm, so training and
inference compute the same function. It works at 32x32: other sizes are resized to 32x32 inside the
module (bilinear with antialiasing), so one classifier scores generators of every resolution.

Recipe (fixed, so every work directory is scored by the same classifier): 300 steps of Adam with a
cosine-decayed learning rate from 3e-3, batch 64, on the "train" stream of the built-in dataset with
seed 0; held-out accuracy is measured on the first 1000 examples of the "validation" stream (above 0.95;
chance is 0.1). Training takes about 15 s on two CPU cores.

Cache: `load_or_train(cache_directory)` keeps the SavedModel in
`<cache_directory>/builtin_classifier_v<VERSION>/` with `builtin_classifier.json` (recipe and held-out
accuracy) beside `saved_model.pb`, trains it only when that directory is missing, and writes it
atomically on a local disk (temporary sibling, then rename), so concurrent runs never see half a model.
The cache directory is the caller's choice (any tf.io.gfile path); the entry points use one per user
(`ylg_tf.command_line.default_classifier_cache_directory`) rather than one per work directory, so FIDs
of different runs are measured by the same classifier and stay comparable.
"""

import json
import logging
import os
import time
import uuid

import numpy as np
import tensorflow as tf
import tf_keras

from ylg_tf.data import builtin_shapes

VERSION = 1
SOURCE_NAME = "builtin"
IMAGE_SIZE = 32
NUM_CLASSES = builtin_shapes.NUM_CLASSES
FEATURE_DIMENSION = 128
CONVOLUTION_CHANNELS = (16, 32, 64, 64)
TRAINING_STEPS = 300
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
HELD_OUT_EXAMPLES = 1000
SEED = 0
METADATA_FILE = "builtin_classifier.json"


def classifier_directory(cache_directory):
    """Where `load_or_train` keeps the SavedModel under `cache_directory`."""
    return os.path.join(os.fspath(cache_directory), f"builtin_classifier_v{VERSION}")


class ShapesClassifier(tf.Module):
    """images [N, H, W, 3] in [-1, 1] -> {"logits": [N, 10], "pool_3": [N, 128]}."""

    def __init__(self, seed=SEED):
        super().__init__(name="builtin_classifier")
        random = np.random.default_rng(seed)

        def he_normal(shape, fan_in):
            return tf.Variable(
                (random.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name="kernel")

        self.convolution_kernels = []
        self.convolution_biases = []
        input_channels = 3
        for output_channels in CONVOLUTION_CHANNELS:
            self.convolution_kernels.append(
                he_normal([3, 3, input_channels, output_channels], 9 * input_channels))
            self.convolution_biases.append(tf.Variable(tf.zeros([output_channels]), name="bias"))
            input_channels = output_channels
        self.feature_kernel = he_normal([input_channels, FEATURE_DIMENSION], input_channels)
        self.feature_bias = tf.Variable(tf.zeros([FEATURE_DIMENSION]), name="feature_bias")
        self.logits_kernel = he_normal([FEATURE_DIMENSION, NUM_CLASSES], FEATURE_DIMENSION)
        self.logits_bias = tf.Variable(tf.zeros([NUM_CLASSES]), name="logits_bias")

    def outputs(self, images):  # [N, H, W, 3]
        """The module's function, without the input signature (used for training)."""
        hidden = _resize_to_native(images)  # [N, 32, 32, 3]
        last = len(CONVOLUTION_CHANNELS) - 1
        for index, (kernel, bias) in enumerate(zip(self.convolution_kernels, self.convolution_biases)):
            hidden = tf.nn.relu(tf.nn.conv2d(hidden, kernel, strides=1, padding="SAME") + bias)
            if index < last:
                hidden = tf.nn.max_pool2d(hidden, ksize=2, strides=2, padding="VALID")
        pooled = tf.reduce_mean(hidden, axis=[1, 2])  # [N, 64]
        features = tf.nn.relu(tf.matmul(pooled, self.feature_kernel) + self.feature_bias)  # [N, 128]
        logits = tf.matmul(features, self.logits_kernel) + self.logits_bias  # [N, 10]
        return {"logits": logits, "pool_3": features}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        return self.outputs(images)


def _resize_to_native(images):
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape[1] == IMAGE_SIZE and images.shape[2] == IMAGE_SIZE:
        return images
    return tf.image.resize(images, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear", antialias=True)


def train_classifier(progress=None):
    """Trains a ShapesClassifier with the module's fixed recipe.

    Args:
        progress: optional callback(step, loss) called every 100 steps and at the end.

    Returns:
        (classifier, held-out accuracy as a float).
    """
    classifier = ShapesClassifier(SEED)
    learning_rate = tf_keras.optimizers.schedules.CosineDecay(LEARNING_RATE, TRAINING_STEPS)
    optimizer = tf_keras.optimizers.Adam(learning_rate)
    batches = builtin_shapes.builtin_shapes_dataset(IMAGE_SIZE, SEED, split="train").batch(BATCH_SIZE)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = classifier.outputs(images)["logits"]
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        variables = classifier.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for step, (images, labels) in enumerate(batches.take(TRAINING_STEPS).prefetch(2), start=1):
        loss = train_step(images, labels)
        if progress is not None and (step % 100 == 0 or step == TRAINING_STEPS):
            progress(step, float(loss))
    return classifier, held_out_accuracy(classifier)


def held_out_accuracy(classifier):
    """Accuracy of `classifier(images)["logits"]` on the first 1000 built-in "validation" examples."""
    examples = builtin_shapes.builtin_shapes_dataset(
        IMAGE_SIZE, SEED, HELD_OUT_EXAMPLES, split="validation").batch(250)
    correct = 0
    for images, labels in examples:
        predictions = tf.argmax(classifier(images)["logits"], axis=-1, output_type=tf.int32)
        correct += int(tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.int32)))
    return correct / HELD_OUT_EXAMPLES


def save_classifier(classifier, directory, metadata):
    """Writes the SavedModel and its metadata JSON into `directory` (which must not exist yet)."""
    signature = classifier.__call__.get_concrete_function()
    tf.saved_model.save(classifier, directory, signatures={"serving_default": signature})
    with tf.io.gfile.GFile(os.path.join(directory, METADATA_FILE), "w") as file:
        file.write(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def read_metadata(directory):
    """The metadata dict of a cached classifier directory (recipe, held-out accuracy)."""
    path = os.path.join(os.fspath(directory), METADATA_FILE)
    try:
        with tf.io.gfile.GFile(path, "r") as file:
            return json.loads(file.read())
    except (OSError, tf.errors.OpError, json.JSONDecodeError) as error:
        raise FileNotFoundError(
            f"{path!r} is missing or unreadable ({error}); delete {os.fspath(directory)!r} to retrain "
            "the built-in classifier") from None


def _is_saved(directory):
    return tf.io.gfile.exists(os.path.join(directory, tf.saved_model.SAVED_MODEL_FILENAME_PB))


def load_or_train(cache_directory, progress=None):
    """The cached classifier's directory and metadata, training and caching it first if needed.

    Args:
        cache_directory: cache root (any tf.io.gfile path), for example one per user.
        progress: optional callback(step, loss) during training.

    Returns:
        (directory of the SavedModel, metadata dict with "held_out_accuracy" among others).
    """
    if not cache_directory:
        raise ValueError(
            f"cache_directory must name the directory the built-in classifier is cached in, got "
            f"{cache_directory!r}")
    cache_directory = os.fspath(cache_directory)
    directory = classifier_directory(cache_directory)
    if _is_saved(directory):
        return directory, read_metadata(directory)

    logging.info("Training the built-in classifier (%d steps); it will be cached in %s",
                 TRAINING_STEPS, directory)
    start = time.perf_counter()
    classifier, accuracy = train_classifier(progress)
    metadata = {
        "version": VERSION,
        "image_size": IMAGE_SIZE,
        "num_classes": NUM_CLASSES,
        "feature_dimension": FEATURE_DIMENSION,
        "training_steps": TRAINING_STEPS,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "seed": SEED,
        "held_out_examples": HELD_OUT_EXAMPLES,
        "held_out_accuracy": accuracy,
        "training_seconds": round(time.perf_counter() - start, 2),
    }
    tf.io.gfile.makedirs(cache_directory)
    # A unique sibling, renamed into place once complete (atomic on a local disk; a copy on object stores).
    temporary = os.path.join(cache_directory, f".builtin_classifier.writing-{uuid.uuid4().hex[:12]}")
    try:
        save_classifier(classifier, temporary, metadata)
        try:
            tf.io.gfile.rename(temporary, directory)
        except (OSError, tf.errors.OpError):
            # Another process finished first; its classifier was trained with the same recipe.
            if not _is_saved(directory):
                raise
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.rmtree(temporary)
    logging.info("Built-in classifier: held-out accuracy %.3f (chance %.2f)", accuracy, 1.0 / NUM_CLASSES)
    return directory, read_metadata(directory)
