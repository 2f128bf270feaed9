"""How images reach the classifier's 299x299 input: the resize methods the evaluation protocols name.

- RESIZE_BY_MODULE ("module"): no resize here; the images reach the module at the generator's resolution
  and the TF-Hub Inception module resizes them itself. TF-GAN 2.x's self-attention example does this
  (tensorflow/gan, tensorflow_gan/examples/self_attention_estimator/eval_lib.py, `get_activations`:
  "Image resizing happens inside the Inception SavedModel").
- RESIZE_BILINEAR_299 ("bilinear_299"): `tf.image.resize(..., method="bilinear")`, TF2's bilinear resize
  with half-pixel centres, as TF-GAN's CIFAR example resizes before `tfgan.eval.inception_score`.
- RESIZE_LEGACY_BILINEAR_299 ("legacy_bilinear_299"): the TF1 bilinear resize, what the YLG code ran
  (giannisdaras/ylg, branch `train`, ylg/eval_lib.py, `get_activations`:
  `tf.compat.v1.image.resize(images, [299, 299], method=BILINEAR)`, as the TF-GAN 1.x self-attention
  example's eval_lib.py did). `tf.compat.v1.image.resize` with BILINEAR calls the ResizeBilinear kernel
  with align_corners=False and half_pixel_centers=False: output pixel i samples the input at
  i * in_size / out_size (no half-pixel offset), interpolating between floor and min(floor + 1, in_size - 1).
  Upsampling 128 -> 299, each output pixel samples the input 0.5 * (1 - 128/299) = 0.29 input pixels
  further down and right than TF2's half-pixel resize does, and the last rows and columns repeat the
  input's last one.

`resize_images(images, size, method)` applies one of the last two; RESIZE_BY_MODULE means "do not call it".
"""

import tensorflow as tf

RESIZE_BY_MODULE = "module"
RESIZE_BILINEAR_299 = "bilinear_299"
RESIZE_LEGACY_BILINEAR_299 = "legacy_bilinear_299"
RESIZE_METHODS = (RESIZE_BY_MODULE, RESIZE_BILINEAR_299, RESIZE_LEGACY_BILINEAR_299)
BILINEAR = "bilinear"
LEGACY_BILINEAR = "legacy_bilinear"
INTERPOLATIONS = (BILINEAR, LEGACY_BILINEAR)
# The interpolation behind each method that resizes here.
INTERPOLATION_OF_METHOD = {RESIZE_BILINEAR_299: BILINEAR, RESIZE_LEGACY_BILINEAR_299: LEGACY_BILINEAR}


def check_resize_method(method):
    """Raises ValueError naming `method` and the allowed ones unless it is one of RESIZE_METHODS."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method {method!r} is not one of {RESIZE_METHODS}")


def resize_images(images, size, interpolation):
    """images [N, H, W, C] float32 -> [N, size, size, C] with `interpolation` ("bilinear": TF2's
    `tf.image.resize`, half-pixel centres; "legacy_bilinear": TF1's, no half-pixel centres)."""
    if interpolation == BILINEAR:
        return tf.image.resize(images, [size, size], method="bilinear")
    if interpolation == LEGACY_BILINEAR:
        return tf.compat.v1.image.resize_bilinear(
            images, [size, size], align_corners=False, half_pixel_centers=False)
    raise ValueError(f"interpolation {interpolation!r} is not one of {INTERPOLATIONS}")
