"""Evaluation protocols of image-to-image translation (CycleGAN, StarGAN), on arrays and functions.

A translator is a function ``images -> images`` on floats in ``[0, 1]``, shape ``(N, H, W, C)``;
it may return values slightly outside ``[0, 1]`` (a generator's tanh output mapped back), and
the protocols say where they clip. A classifier is anything with ``logits(images) -> (N, K)``
(:class:`genjax.eval.features.FeatureClassifier`), or a string saying why there is none: that
string is then reported in place of the metrics the classifier would give (``"skipped: ..."``).
Nothing here knows a method, a trainer or a checkpoint.

Paired views (every eval image in every domain, :func:`genjax.data.domains.make_domain_views`,
``views[:, d]`` the view of domain ``d``), all errors mean absolute errors in [0, 1] pixel units:

* ``pixel_l1_<a>_to_<b>``: the translation (unclipped) against the ground-truth view;
  ``..._identity_baseline``: the same error for doing nothing (the input itself);
* ``cycle_l1_<a>``: ``|F(clip(G(x))) - x|`` (unclipped reconstruction; :func:`two_domain_metrics`);
* ``label_accuracy_<a>_to_<b>``: the digit classifier's accuracy on the clipped translations
  (label preservation), with ``..._ground_truth``, its accuracy on the ground-truth views.

:func:`multi_domain_metrics` (StarGAN) reports every ordered pair of distinct domains
(``label_accuracy_<a>_to_<b>``, ``domain_accuracy_<a>_to_<b>``: an independent domain
classifier's share of translations assigned to the target domain, Choi et al. 2018 Sec. 5;
``pixel_l1_<a>_to_<b>``, ``cycle_l1_<a>_to_<b>`` = ``|G(clip(G(x, b)), a) - x|``), their
averages over all pairs (the keys without a pair) and, when ``rot90`` is one of three or more
domains, over the pairs without it (``..._without_rot90``: the pairs a convolutional generator
can do with local operations); beside them the accuracy of StarGAN's own domain head D_cls on
the real views and the domain classifier's accuracy on the ground-truth views.

:func:`unpaired_cycle_metrics`: two datasets without ground truth, only the cycle errors
``cycle_l1_a`` = ``|F(clip(G(a))) - a|`` and ``cycle_l1_b`` = ``|G(clip(F(b))) - b|``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

Translator = Callable[[np.ndarray], np.ndarray]
PAIR_SUFFIXES = ("_identity_baseline", "_ground_truth")  # kept after the pair in a key
LOCAL_EXCLUDED = "rot90"  # the domain left out of the ``_without_rot90`` averages


def mean_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two arrays of one shape, a Python float."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"the images compared must have one shape, got {np.shape(a)} and "
                         f"{np.shape(b)}")
    return float(np.mean(np.abs(a - b)))


def label_accuracy(classifier, images: np.ndarray, labels) -> float:
    """Share of ``images`` whose argmax of ``classifier.logits(images)`` is ``labels``.

    Args:
      classifier: anything with ``logits(images) -> (N, K)`` (ties go to the lowest class).
      images: ``(N, H, W, C)`` floats in [0, 1].
      labels: ``(N,)`` integer classes.

    Returns:
      The accuracy in [0, 1] as a Python float.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
        raise ValueError(f"labels must be ({len(images)},) integer classes, one per image, got "
                         f"shape {labels.shape} and dtype {labels.dtype}")
    logits = np.asarray(classifier.logits(images))
    if logits.ndim != 2 or len(logits) != len(images):
        raise ValueError(f"classifier.logits must return ({len(images)}, K) logits, got shape "
                         f"{logits.shape}")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _check_views(views: np.ndarray, names: Sequence[str]) -> None:
    if np.ndim(views) != 5 or np.shape(views)[1] != len(names) or len(views) < 1:
        raise ValueError(f"views must be (N, {len(names)}, H, W, C) with N >= 1: one view per "
                         f"domain of {tuple(names)}, got shape {np.shape(views)}")


def two_domain_metrics(translate_xy: Translator, translate_yx: Translator, views: np.ndarray,
                       labels: np.ndarray | None, names: Sequence[str], *,
                       classifier) -> dict:
    """CycleGAN's paired protocol on ``views`` ``(N, 2, H, W, C)`` of domains ``names = (X, Y)``.

    For each direction (X -> Y with G = ``translate_xy``, then Y -> X with F = ``translate_yx``):
    ``pixel_l1_<a>_to_<b>``, ``..._identity_baseline``, ``cycle_l1_<a>`` and, when ``labels``
    (the digit of each base image) is given, ``label_accuracy_<a>_to_<b>`` with
    ``..._ground_truth`` (or ``label_accuracy``: ``classifier`` when it is a string); first
    ``num_examples``.
    """
    _check_views(views, names)
    if len(names) != 2:
        raise ValueError(f"names must be the two domains (X, Y), got {tuple(names)}")
    out: dict = {"num_examples": len(views)}
    for a, b, forward, back in ((0, 1, translate_xy, translate_yx),
                                (1, 0, translate_yx, translate_xy)):
        src, truth = views[:, a], views[:, b]
        translated = forward(src)
        reconstructed = back(np.clip(translated, 0, 1))
        pair = f"{names[a]}_to_{names[b]}"
        out[f"pixel_l1_{pair}"] = mean_l1(translated, truth)
        out[f"pixel_l1_{pair}_identity_baseline"] = mean_l1(src, truth)
        out[f"cycle_l1_{names[a]}"] = mean_l1(reconstructed, src)
        if labels is not None and not isinstance(classifier, str):
            out[f"label_accuracy_{pair}"] = label_accuracy(
                classifier, np.clip(translated, 0, 1), labels)
            out[f"label_accuracy_{pair}_ground_truth"] = label_accuracy(classifier, truth, labels)
    if labels is not None and isinstance(classifier, str):
        out["label_accuracy"] = classifier
    return out


def unpaired_cycle_metrics(translate_ab: Translator, translate_ba: Translator,
                           images_a: np.ndarray, images_b: np.ndarray, *,
                           no_ground_truth: str) -> dict:
    """Cycle errors of two unpaired image sets (floats in [0, 1]): ``num_examples_a``,
    ``num_examples_b``, ``cycle_l1_a``, ``cycle_l1_b``; ``pixel_l1`` and ``label_accuracy``
    are ``no_ground_truth`` (the reason they are skipped)."""
    out: dict = {"num_examples_a": len(images_a), "num_examples_b": len(images_b)}
    for name, src, forward, back in (("a", images_a, translate_ab, translate_ba),
                                     ("b", images_b, translate_ba, translate_ab)):
        translated = np.clip(forward(src), 0, 1)
        out[f"cycle_l1_{name}"] = mean_l1(back(translated), src)
    out["pixel_l1"] = no_ground_truth
    out["label_accuracy"] = no_ground_truth
    return out


def pair_key(metric: str, pair: str) -> str:
    """The key of ``metric`` for one pair ``"<a>_to_<b>"``, the pair before a protocol suffix:
    ``("label_accuracy_ground_truth", "a_to_b")`` -> ``"label_accuracy_a_to_b_ground_truth"``."""
    for suffix in PAIR_SUFFIXES:
        if metric.endswith(suffix):
            return f"{metric[: -len(suffix)]}_{pair}{suffix}"
    return f"{metric}_{pair}"


def pair_means(pairs: Iterable[dict], suffix: str = "") -> dict:
    """Each metric of the first pair averaged over ``pairs`` (dicts of one pair's metrics), as
    ``<metric><suffix>``."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pair_means needs at least one pair")
    return {f"{m}{suffix}": float(np.mean([p[m] for p in pairs])) for m in pairs[0]}


def real_domain_accuracy(domain_logits: Callable[[np.ndarray], np.ndarray],
                         views: np.ndarray) -> float:
    """Mean over domains ``d`` of the share of ``views[:, d]`` whose argmax of
    ``domain_logits`` is ``d`` (StarGAN's D_cls on real images)."""
    return float(np.mean([np.mean(np.argmax(domain_logits(views[:, d]), 1) == d)
                          for d in range(np.shape(views)[1])]))


def multi_domain_metrics(translate: Callable[[np.ndarray, int], np.ndarray], views: np.ndarray,
                         labels: np.ndarray | None, names: Sequence[str], *,
                         domain_classes: Sequence[int], classifier, domain_classifier,
                         domain_logits: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """StarGAN's per-pair table on ``views`` ``(N, K, H, W, C)`` of the domains ``names``.

    Args:
      translate: ``(images, t) -> G(images, t)`` for the target domain index ``t``.
      views: the paired views in [0, 1].
      labels: ``(N,)`` digits of the base images, or ``None`` (no label metrics).
      names: the K domain names.
      domain_classes: the domain classifier's class of each of the K domains.
      classifier, domain_classifier: the digit and domain classifiers, or strings saying why
        there are none (reported as ``label_accuracy`` / ``domain_accuracy``).
      domain_logits: the translator's own domain logits of real images (StarGAN's D_cls), for
        ``discriminator_domain_accuracy_real``; ``None`` leaves it out.

    Returns:
      ``num_examples``, ``discriminator_domain_accuracy_real``, every pair's metrics
      (:func:`pair_key`), their means over all pairs (:func:`pair_means`), ``num_domain_pairs``,
      the ``_without_rot90`` means with ``num_domain_pairs_without_rot90``,
      ``domain_accuracy_ground_truth``, and the skip reasons of missing classifiers.
    """
    _check_views(views, names)
    if len(domain_classes) != len(names):
        raise ValueError(f"domain_classes must give one class per domain of {tuple(names)}, "
                         f"got {tuple(domain_classes)}")
    k, n = len(names), len(views)
    out: dict = {"num_examples": n}
    if domain_logits is not None:
        out["discriminator_domain_accuracy_real"] = real_domain_accuracy(domain_logits, views)
    with_domain = not isinstance(domain_classifier, str)
    with_labels = labels is not None and not isinstance(classifier, str)
    pairs = {}  # "<a>_to_<b>" -> {metric: value}
    for s in range(k):
        for t in range(k):
            if s == t:
                continue
            src, truth = views[:, s], views[:, t]
            translated = translate(src, t)
            reconstructed = translate(np.clip(translated, 0, 1), s)
            pair = {
                "pixel_l1": mean_l1(translated, truth),
                "pixel_l1_identity_baseline": mean_l1(src, truth),
                "cycle_l1": mean_l1(reconstructed, src),
            }
            if with_domain:
                pair["domain_accuracy"] = label_accuracy(
                    domain_classifier, np.clip(translated, 0, 1), np.full(n, domain_classes[t]))
            if with_labels:
                pair["label_accuracy"] = label_accuracy(
                    classifier, np.clip(translated, 0, 1), labels)
                pair["label_accuracy_ground_truth"] = label_accuracy(classifier, truth, labels)
            pairs[f"{names[s]}_to_{names[t]}"] = pair
    for st, pair in pairs.items():
        for metric, value in pair.items():
            out[pair_key(metric, st)] = value
    out.update(pair_means(pairs.values()))
    out["num_domain_pairs"] = len(pairs)
    if LOCAL_EXCLUDED in names and k >= 3:
        local = [p for st, p in pairs.items() if LOCAL_EXCLUDED not in st.split("_to_")]
        out.update(pair_means(local, f"_without_{LOCAL_EXCLUDED}"))
        out[f"num_domain_pairs_without_{LOCAL_EXCLUDED}"] = len(local)
    if with_domain:
        out["domain_accuracy_ground_truth"] = float(np.mean([label_accuracy(
            domain_classifier, views[:, t], np.full(n, domain_classes[t])) for t in range(k)]))
    else:
        out["domain_accuracy"] = domain_classifier
    if labels is not None and not with_labels:
        out["label_accuracy"] = classifier
    return out
