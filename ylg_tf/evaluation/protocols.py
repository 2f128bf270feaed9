"""The named evaluation protocols: how many samples, which real images, how they reach Inception.

A score is comparable with a published one only when it was measured the same way. Each protocol is a
frozen `EvaluationProtocol`, recorded in every result JSON (`to_dict`), chosen by name with
`tools/evaluate.py --protocol=NAME` or `config.training.eval_protocol` (periodic evaluation):

- "standard" (the default): 50,000 generated images against the first 50,000 real images of the evaluation
  split in order (ImageNet's whole validation split), resized by the Inception module itself (TF-GAN 2.x's
  self-attention example, tensorflow/gan, tensorflow_gan/examples/self_attention_estimator/eval_lib.py:
  "Image resizing happens inside the Inception SavedModel"). 50k is the community standard.
- "ylg": what the YLG code measured (giannisdaras/ylg, branch `train`). ylg/train_experiment.py evaluates
  with `estimator.evaluate(train_eval_input_fn, steps=num_eval_steps)`, 32 steps (the
  ylg/train_experiment_main.py default) of 1024 images (the reproduction spec's eval batch; the flag's own
  default is 32): 32,768 generated images, and the same number of real ones from the "validation" split,
  read by ylg/data_provider.py `provide_dataset` unshuffled (it shuffles only the train split) and in file
  order, so the first 32,768. ylg/estimator_lib.py `prepare_metric_arguments` passes both the real and the
  generated float images through ylg/eval_lib.py `get_activations`, which resizes them to 299x299 with
  `tf.compat.v1.image.resize(..., method=BILINEAR)` (TF1's bilinear resize, no half-pixel centres:
  `ylg_tf.evaluation.resizing`) before `tfgan.eval.sample_and_run_inception`; IS is one split
  (`classifier_score_from_logits_streaming`), FID from the pooled activations.

Both score float images in [-1, 1] (an exported generator's uint8 images are a deviation) with IS over one
split. `deviations` lists how an evaluation departs from its protocol; a result with none is "comparable".
"""

import dataclasses
from typing import Optional

from ylg_tf.config import EVALUATION_PROTOCOLS
from ylg_tf.evaluation import resizing
from ylg_tf.evaluation.classifiers import EvaluationError


@dataclasses.dataclass(frozen=True)
class EvaluationProtocol:
    """One way of measuring IS and FID.

    name: the protocol's name (`--protocol`, `config.training.eval_protocol`).
    num_samples: generated images scored, and real images summarised.
    split: the real images' split, or None for the work directory config's `data.eval_split`.
    real_images: which real images: the first `num_samples` of the split, in order.
    resize: how images reach the classifier's 299x299 input (`ylg_tf.evaluation.resizing`).
    image_dtype: the type of the images scored (float32: the generator's output, not quantised).
    inception_score_splits: the Inception Score's number of splits.
    comparable_with: whose scores a result of this protocol compares with.
    source: where the protocol comes from.
    """

    name: str
    num_samples: int
    split: Optional[str]
    resize: str
    comparable_with: str
    source: str
    real_images: str = "first num_samples of the split, in order"
    image_dtype: str = "float32"
    inception_score_splits: int = 1

    def __post_init__(self):
        resizing.check_resize_method(self.resize)

    def to_dict(self):
        return dataclasses.asdict(self)


STANDARD = EvaluationProtocol(
    name="standard",
    num_samples=50_000,
    split=None,
    resize=resizing.RESIZE_BY_MODULE,
    comparable_with="50,000-sample scores (the community standard)",
    source="the community standard count; the resize as tensorflow/gan "
           "tensorflow_gan/examples/self_attention_estimator/eval_lib.py (TF-GAN 2.x, resizing inside the "
           "Inception SavedModel)",
)
YLG = EvaluationProtocol(
    name="ylg",
    num_samples=32 * 1024,
    split="validation",
    resize=resizing.RESIZE_LEGACY_BILINEAR_299,
    comparable_with="the YLG paper's scores",
    source="giannisdaras/ylg branch train: ylg/eval_lib.py get_activations (tf.compat.v1.image.resize "
           "bilinear to 299), ylg/train_experiment.py (32 eval steps on the unshuffled validation split)",
)
PROTOCOLS = {protocol.name: protocol for protocol in (STANDARD, YLG)}
DEFAULT_PROTOCOL = STANDARD.name
if tuple(PROTOCOLS) != EVALUATION_PROTOCOLS:  # config validates the names without importing this module
    raise AssertionError(
        f"PROTOCOLS {tuple(PROTOCOLS)} and config.EVALUATION_PROTOCOLS {EVALUATION_PROTOCOLS} differ")


def get_protocol(name):
    """The EvaluationProtocol called `name` (an EvaluationProtocol is returned as it is)."""
    if isinstance(name, EvaluationProtocol):
        return name
    if name not in PROTOCOLS:
        raise EvaluationError(f"unknown evaluation protocol {name!r}; choose one of {list(PROTOCOLS)}")
    return PROTOCOLS[name]


def deviations(protocol, *, num_samples, split, resize, classifier_kind="inception", quantised_images=False):
    """How an evaluation departs from `protocol`: one short phrase per difference (empty: comparable).

    Args:
        protocol: the EvaluationProtocol.
        num_samples, split, resize: what the evaluation uses (resize: a `resizing` method name).
        classifier_kind: "inception" or "builtin" (the built-in dataset's classifier is not Inception).
        quantised_images: whether the generated images were quantised (an exported generator's uint8).
    """
    found = []
    if num_samples != protocol.num_samples:
        relation = "below" if num_samples < protocol.num_samples else "above"
        found.append(f"num_samples={num_samples} is {relation} the {protocol.name} protocol's "
                     f"{protocol.num_samples}")
    if protocol.split is not None and split != protocol.split:
        found.append(f"real images from split {split!r}, not {protocol.split!r}")
    if classifier_kind != "inception":
        found.append(f"classifier {classifier_kind!r}, not Inception")
    elif resize != protocol.resize:
        found.append(f"resize {resize!r}, not {protocol.resize!r}")
    if quantised_images:
        found.append("generated images quantised to uint8 (an exported generator), not float32")
    return found


def not_comparable_warning(protocol, found):
    """The one-line warning for the deviations `found`, or None when there are none."""
    if not found:
        return None
    return f"warning: scores not comparable with {protocol.comparable_with}: {'; '.join(found)}"
