"""Loading the Inception classifier used for IS and FID (TF-GAN's TF-Hub module) without long hangs.

`load_classifier(source)` returns `classifier(images) -> {"logits": [N, 1008], "pool_3": [N, 2048]}`
for float images in [-1, 1] of any size. The source may be

- a TF-Hub URL (default `DEFAULT_INCEPTION`, the module TF-GAN and the originals use), served from
  TFHUB_CACHE_DIR when that already holds it, otherwise downloaded;
- a directory holding the unpacked module (a SavedModel), local or on any tf.io.gfile filesystem.

Both go through `tensorflow_hub.load`, the call inside TF-GAN's `classifier_fn_from_tfhub`, and the
outputs get the same treatment (select `logits`/`pool_3`, flatten to [N, features]). TF-GAN's
function itself is not used because it calls `tensorflow_hub.load` on every batch, re-reading the
SavedModel each time in eager mode; here the module is loaded once.

Resizing: by default images are resized to 299x299 with TF2's bilinear resize (`tf.image.resize`,
half-pixel centres, as TF-GAN's CIFAR example does before `tfgan.eval.inception_score`);
`interpolation="legacy_bilinear"` uses TF1's instead (no half-pixel centres), as the YLG code did
(giannisdaras/ylg, branch `train`, ylg/eval_lib.py `get_activations`: `tf.compat.v1.image.resize` to
299x299 before `tfgan.eval.sample_and_run_inception`); see `ylg_tf.evaluation.resizing`. The TF-Hub module
also resizes internally, so a 299x299 input is passed through unchanged, and `image_size=None` leaves the
resize to the module, as TF-GAN 2.x's self-attention example does (tensorflow/gan,
tensorflow_gan/examples/self_attention_estimator/eval_lib.py: "Image resizing happens inside the Inception
SavedModel"). Which one an evaluation uses is its protocol's choice (`ylg_tf.evaluation.protocols`).

Without network a URL source fails within about `network_timeout_seconds` (a probe with that timeout
runs before tensorflow_hub's own download, which has none) with an `InceptionUnavailableError` whose
one-line message says how to provide a local copy. That error is an OSError (a resource that cannot be
reached), so entry points report it as a one-line user error.

`is_url` and `one_line` are shared with `ylg_tf.evaluation.evaluate`, which loads classifiers through here.
"""

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings

import tensorflow as tf

from ylg_tf.evaluation import resizing

with warnings.catch_warnings():  # tensorflow-hub 0.16.1 imports pkg_resources, which setuptools 80 deprecates
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import tensorflow_hub as hub

DEFAULT_INCEPTION = "https://tfhub.dev/tensorflow/tfgan/eval/inception/1"
INCEPTION_IMAGE_SIZE = 299
LOGITS = "logits"
POOL = "pool_3"
OUTPUT_FIELDS = (LOGITS, POOL)
DEFAULT_NETWORK_TIMEOUT_SECONDS = 15.0

_COMPRESSED_FORMAT_QUERY = "tf-hub-format=compressed"


class InceptionUnavailableError(OSError):
    """The Inception module (or another classifier) could not be found, downloaded, loaded or called."""


def is_url(source):
    """Whether a classifier source is a TF-Hub URL rather than a directory."""
    return source.startswith(("http://", "https://"))


def one_line(value):
    """str(value) with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(value).split())


def load_classifier(source=DEFAULT_INCEPTION, image_size=INCEPTION_IMAGE_SIZE,
                    network_timeout_seconds=DEFAULT_NETWORK_TIMEOUT_SECONDS, interpolation=resizing.BILINEAR):
    """Loads the Inception module once and returns a function of images.

    Args:
        source: TF-Hub URL or directory of the unpacked module (SavedModel).
        image_size: side the images are resized to before the module, or None to pass them unresized
            (the module then resizes them itself, as TF-GAN 2.x's self-attention example).
        network_timeout_seconds: how long a URL source may take to answer before giving up.
        interpolation: "bilinear" (TF2's `tf.image.resize`) or "legacy_bilinear" (TF1's
            `tf.compat.v1.image.resize`, as the YLG code); see `ylg_tf.evaluation.resizing`.

    Returns:
        `classifier(images)`: images [N, H, W, 3] float in [-1, 1] (array or tensor) ->
        {"logits": [N, 1008] float32, "pool_3": [N, 2048] float32}.

    Raises:
        InceptionUnavailableError: the module cannot be reached or loaded, or lacks the outputs.
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"source must be a TF-Hub URL or a directory path, got {source!r}.")
    if image_size is not None and (
            isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}.")
    if interpolation not in resizing.INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {resizing.INTERPOLATIONS}, got {interpolation!r}.")
    if not network_timeout_seconds > 0:
        raise ValueError(
            f"network_timeout_seconds must be positive, got {network_timeout_seconds!r}.")

    _check_source_reachable(source, network_timeout_seconds)
    try:
        module = hub.load(source)
    except Exception as error:  # tensorflow_hub raises IOError, ValueError, URLError, OpError...
        raise InceptionUnavailableError(
            _unavailable_message(source, f"tensorflow_hub.load failed: {one_line(error)}")
        ) from error
    if not callable(module):
        raise InceptionUnavailableError(_unavailable_message(
            source, "the SavedModel is not callable (TF-GAN calls the module on the images)"))
    logging.info("Loaded the Inception classifier from %s", source)

    # Unresized images keep their static shape in each trace: a relaxed [None, None, None, 3] trace
    # would let a restored module with a fixed input size accept any size silently.
    @tf.function(reduce_retracing=image_size is not None, autograph=False)
    def classify(images):  # [N, H, W, 3]
        if image_size is not None:
            images = resizing.resize_images(images, image_size, interpolation)
        outputs = module(images)
        if not isinstance(outputs, dict) or any(field not in outputs for field in OUTPUT_FIELDS):
            found = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
            raise InceptionUnavailableError(_unavailable_message(
                source, f"the module returns {found}, expected a dict with {list(OUTPUT_FIELDS)}"))
        # Flatten as TF-GAN's classifier_fn_from_tfhub does: [N, ...] -> [N, features].
        return {field: tf.reshape(tf.cast(outputs[field], tf.float32), [tf.shape(images)[0], -1])
                for field in OUTPUT_FIELDS}

    def classifier(images):
        images = tf.convert_to_tensor(images, dtype=tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must have shape [N, H, W, 3], got {images.shape}.")
        return classify(images)

    if image_size is not None:
        # Tracing now checks the module's interface at load time, not at the first batch.
        try:
            classify.get_concrete_function(
                tf.TensorSpec([None, image_size, image_size, 3], tf.float32))
        except (TypeError, ValueError) as error:
            raise InceptionUnavailableError(_unavailable_message(
                source, f"the module cannot be called on [N, {image_size}, {image_size}, 3] "
                f"float32 images: {one_line(error)}")) from error
    return classifier


def hub_cache_directory(url):
    """Directory where tensorflow_hub caches (and looks for) the unpacked module of `url`.

    tensorflow_hub keeps a downloaded module in $TFHUB_CACHE_DIR (default
    <system temp>/tfhub_modules) under the SHA-1 hex digest of the handle string.
    """
    cache_root = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "tfhub_modules")
    return os.path.join(cache_root, hashlib.sha1(url.encode("utf8")).hexdigest())


def _check_source_reachable(source, network_timeout_seconds):
    if not is_url(source):
        if not tf.io.gfile.exists(source):
            raise InceptionUnavailableError(
                _unavailable_message(source, "no such file or directory"))
        saved_model_files = [tf.saved_model.SAVED_MODEL_FILENAME_PB,
                             tf.saved_model.SAVED_MODEL_FILENAME_PBTXT]
        if not any(tf.io.gfile.exists(os.path.join(source, name)) for name in saved_model_files):
            raise InceptionUnavailableError(_unavailable_message(
                source, f"the directory holds no {' or '.join(saved_model_files)}"))
        return
    cached = hub_cache_directory(source)
    if tf.io.gfile.isdir(cached) and tf.io.gfile.listdir(cached):
        return  # tensorflow_hub will use the cache without touching the network.
    # tensorflow_hub's download has no timeout: probe first so an offline machine fails fast.
    request = urllib.request.Request(_with_compressed_query(source), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=network_timeout_seconds):
            pass
    except urllib.error.HTTPError:
        pass  # The server answered; let tensorflow_hub report what it makes of the handle.
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise InceptionUnavailableError(_unavailable_message(
            source, f"network unreachable within {network_timeout_seconds:g} s "
            f"({one_line(reason)}) and not in the TF-Hub cache {cached}")) from error


def _with_compressed_query(url):
    separator = "&" if urllib.parse.urlparse(url).query else "?"
    return f"{url}{separator}{_COMPRESSED_FORMAT_QUERY}"


def _unavailable_message(source, reason):
    url = source if is_url(source) else DEFAULT_INCEPTION
    return (
        f"Inception classifier unavailable from {source!r}: {reason}. To provide a local copy, "
        f"on a machine with internet download {_with_compressed_query(url)} (a .tar.gz), unpack "
        f"it into a directory (mkdir DIR && tar -xzf FILE -C DIR) and pass that directory as "
        f"the source (--inception=DIR), or unpack it into {hub_cache_directory(url)} "
        f"(TFHUB_CACHE_DIR/<sha1 of the URL>) so the URL resolves offline.")

