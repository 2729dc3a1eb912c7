"""Classification terms: softmax cross-entropy (nats per example) and accuracy.

These train and score genjax's per-dataset feature classifier (whose features give the
"FD-<dataset>-cnn" Frechet distance and kernel distance of generated images, and whose
predictions give the label accuracy of conditional and translation models).

Conventions as in the rest of :mod:`genjax.losses`: logits, not probabilities; the
likelihood term is returned per example in nats (natural log) and the caller reduces;
integer class labels; bad shapes or dtypes raise ``ValueError`` naming the argument.
Logits of any floating precision are accepted (bfloat16 from a network run under
``train.compute_dtype=bfloat16``) and cast up to at least float32 before any arithmetic.
Label *values* are never read (that would be impossible under ``jax.jit``): a label outside
``[0, K)`` gives an undefined result, exactly as an out-of-range index does in NumPy.
"""

import jax
import jax.numpy as jnp

from genjax.losses import _checks


def _logits_and_labels(logits, labels) -> tuple[jax.Array, jax.Array]:
    logits = _checks.float32_array("logits", logits)
    labels = _checks.integer_array("labels", labels)
    _checks.exact_ndim("logits", logits, 2, "(B, K): a batch of class scores")
    if logits.shape[1] < 1:
        raise ValueError(f"logits must have at least one class column, got shape {logits.shape}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must have shape (B,) = {logits.shape[:1]} (one integer class index per "
            f"row of logits), got {labels.shape}"
        )
    return logits, labels.astype(jnp.int32)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Negative log-likelihood of integer labels under a softmax: ``-log softmax(l)[y]``.

    Computed as ``logsumexp(l) - l[y]`` (``jax.nn.log_softmax``), which is exact and finite
    for any finite logits. No label smoothing, no class weights, no reduction.

    Args:
      logits: (B, K) unnormalised class scores, floating point.
      labels: (B,) integer class indices in ``[0, K)`` (values are not checked).

    Returns:
      (B,) negative log-likelihood in nats per example (>= 0), in the dtype of ``logits``
      cast up to at least float32.
      Its batch mean is the usual cross-entropy training loss.

    Raises:
      ValueError: ``logits`` not a floating (B, K) array, ``labels`` not an integer (B,) array.

    References:
      Bishop, "Pattern Recognition and Machine Learning", 2006, Sec. 4.3.4, Eq. (4.108)
      (cross-entropy error of the multiclass softmax model).
    """
    logits, labels = _logits_and_labels(logits, labels)
    log_probs = jax.nn.log_softmax(logits, axis=1)
    return -jnp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per row, 1.0 where the highest logit is at the label, else 0.0: ``argmax(l) == y``.

    Ties go to the lowest class index (``jnp.argmax``). Not differentiable; a metric only.
    Its mean is :func:`accuracy`; per example, it sums over batches of any split.

    Args:
      logits: (B, K) class scores, floating point.
      labels: (B,) integer class indices.

    Returns:
      (B,) float32 of 0.0 and 1.0.

    Raises:
      ValueError: as :func:`softmax_cross_entropy`.
    """
    logits, labels = _logits_and_labels(logits, labels)
    return (jnp.argmax(logits, axis=1) == labels).astype(jnp.float32)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Share of rows whose highest logit is at the label: ``mean(argmax(l) == y)``.

    Ties go to the lowest class index (``jnp.argmax``). Not differentiable; a metric only.

    Args:
      logits: (B, K) class scores, floating point.
      labels: (B,) integer class indices.

    Returns:
      Scalar in ``[0, 1]`` (float32): the fraction of correct predictions in the batch.

    Raises:
      ValueError: as :func:`softmax_cross_entropy`.
    """
    return jnp.mean(correct(logits, labels))
