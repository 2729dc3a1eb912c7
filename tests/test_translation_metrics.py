"""Translation evaluation protocols (genjax.eval.translation_metrics) on small arrays, plain
translator functions and fake classifiers whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from genjax.eval.translation_metrics import (
    label_accuracy,
    mean_l1,
    multi_domain_metrics,
    pair_key,
    pair_means,
    two_domain_metrics,
    unpaired_cycle_metrics,
)

N = 12
LABELS = np.arange(N) % 10


class CodeClassifier:
    """Predicts the class written in one pixel: ``round(image[row, col, 0] * scale)``; it also
    checks that it only ever sees images in [0, 1] (the protocols clip translations for it)."""

    def __init__(self, row: int, col: int, scale: float, num_classes: int):
        self.row, self.col, self.scale, self.num_classes = row, col, scale, num_classes
        self.calls = 0

    def logits(self, images):
        images = np.asarray(images)
        assert images.min() >= 0.0 and images.max() <= 1.0
        self.calls += 1
        code = np.clip(np.rint(images[:, self.row, self.col, 0] * self.scale).astype(int), 0,
                       self.num_classes - 1)
        return np.eye(self.num_classes)[code]


def _two_views(seed: int = 0) -> np.ndarray:
    """(N, 2, 3, 3, 1) views: X = x, Y = 1 - x except pixel (0, 1), which holds the digit / 9 in
    both (the digit classifier reads it). Pixels are multiples of 1/8: 1 - (1 - x) is exact."""
    x = (np.random.default_rng(seed).integers(0, 9, size=(N, 3, 3, 1)) / 8).astype(np.float32)
    x[:, 0, 1, 0] = LABELS / 9
    y = 1.0 - x
    y[:, 0, 1, 0] = LABELS / 9
    return np.stack([x, y], axis=1)


DIGITS = CodeClassifier(0, 1, 9, 10)


def test_label_accuracy_is_the_share_of_argmax_hits():
    images = np.zeros((4, 3, 3, 1), np.float32)
    images[:, 0, 1, 0] = np.array([0, 3, 5, 9]) / 9
    assert label_accuracy(DIGITS, images, np.array([0, 3, 4, 9])) == 0.75

    class Tie:
        def logits(self, images):
            return np.zeros((len(images), 3))  # ties go to the lowest class

    assert label_accuracy(Tie(), images, np.array([0, 0, 1, 2])) == 0.5
    with pytest.raises(ValueError, match=r"labels must be \(4,\) integer classes"):
        label_accuracy(DIGITS, images, np.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"labels must be \(4,\) integer"):
        label_accuracy(DIGITS, images, np.array([0, 1]))


def test_doing_nothing_scores_the_identity_baseline_and_no_cycle_error():
    views = _two_views()
    identity = lambda v: v
    out = two_domain_metrics(identity, identity, views, LABELS, ("original", "inverted"),
                             classifier=DIGITS)
    x, y = views[:, 0], views[:, 1]
    baseline = float(np.mean(np.abs(x - y)))  # computed here from the views themselves
    for pair in ("original_to_inverted", "inverted_to_original"):
        assert out[f"pixel_l1_{pair}"] == out[f"pixel_l1_{pair}_identity_baseline"]
        np.testing.assert_allclose(out[f"pixel_l1_{pair}"], baseline, rtol=1e-6)
        # The digit pixel is the same in both views: the classifier keeps every label.
        assert out[f"label_accuracy_{pair}"] == out[f"label_accuracy_{pair}_ground_truth"] == 1.0
    assert out["cycle_l1_original"] == out["cycle_l1_inverted"] == 0.0
    assert out["num_examples"] == N
    assert list(out) == [
        "num_examples",
        "pixel_l1_original_to_inverted", "pixel_l1_original_to_inverted_identity_baseline",
        "cycle_l1_original", "label_accuracy_original_to_inverted",
        "label_accuracy_original_to_inverted_ground_truth",
        "pixel_l1_inverted_to_original", "pixel_l1_inverted_to_original_identity_baseline",
        "cycle_l1_inverted", "label_accuracy_inverted_to_original",
        "label_accuracy_inverted_to_original_ground_truth",
    ]


def test_a_perfect_translator_scores_zero_and_a_constant_one_its_known_errors():
    views = _two_views(1)
    x, y = views[:, 0], views[:, 1]

    def swap(v):  # the exact inversion, digit pixel kept: X -> Y and Y -> X are the same map
        out = 1.0 - v
        out[:, 0, 1, 0] = v[:, 0, 1, 0]
        return out

    out = two_domain_metrics(swap, swap, views, LABELS, ("original", "inverted"),
                             classifier=DIGITS)
    assert out["pixel_l1_original_to_inverted"] == out["pixel_l1_inverted_to_original"] == 0.0
    assert out["cycle_l1_original"] == 0.0 and out["label_accuracy_original_to_inverted"] == 1.0

    seen = []

    def overshoot(v):  # 1.5 everywhere: outside [0, 1], as an unclipped generator output
        seen.append(np.array(v))
        return np.full_like(v, 1.5)

    out = two_domain_metrics(overshoot, overshoot, views, LABELS, ("a", "b"), classifier=DIGITS)
    # pixel L1 of the unclipped translation; the reconstruction gets the clipped one (ones),
    # the cycle error is that of the unclipped reconstruction (1.5) against the input.
    np.testing.assert_allclose(out["pixel_l1_a_to_b"], np.mean(np.abs(1.5 - y)), rtol=1e-6)
    np.testing.assert_allclose(out["pixel_l1_b_to_a"], np.mean(np.abs(1.5 - x)), rtol=1e-6)
    np.testing.assert_allclose(out["cycle_l1_a"], np.mean(np.abs(1.5 - x)), rtol=1e-6)
    assert np.all(seen[1] == 1.0)  # the back translation's input: the clipped translation
    # The classifier sees clipped ones: digit round(9 * 1) = 9, right for labels 9 only.
    assert out["label_accuracy_a_to_b"] == np.mean(LABELS == 9) == 1 / 12
    assert out["label_accuracy_a_to_b_ground_truth"] == 1.0


def test_a_missing_classifier_is_reported_with_its_reason():
    views = _two_views()
    identity = lambda v: v
    reason = "skipped: no digit classifier; run genjax train classifier_digits_domains"
    out = two_domain_metrics(identity, identity, views, LABELS, ("a", "b"), classifier=reason)
    assert out["label_accuracy"] == reason
    assert not [k for k in out if k.startswith("label_accuracy_")]
    # Without labels there is nothing to preserve: no label key at all.
    out = two_domain_metrics(identity, identity, views, None, ("a", "b"), classifier=reason)
    assert not [k for k in out if k.startswith("label_accuracy")]
    with pytest.raises(ValueError, match=r"views must be \(N, 2, H, W, C\)"):
        two_domain_metrics(identity, identity, views[:, 0], LABELS, ("a", "b"), classifier=reason)


def test_unpaired_cycle_errors():
    rng = np.random.default_rng(2)
    a = rng.uniform(size=(5, 2, 2, 1)).astype(np.float32)
    b = rng.uniform(size=(7, 2, 2, 1)).astype(np.float32)
    brighten, darken = (lambda v: v + 0.25), (lambda v: v - 0.25)
    out = unpaired_cycle_metrics(brighten, darken, a, b, no_ground_truth="skipped: no pairs")
    # a -> clip(a + 0.25) -> that - 0.25: off by what the clip cut; b -> clip(b - 0.25) + 0.25.
    np.testing.assert_allclose(out["cycle_l1_a"], np.mean(np.maximum(a + 0.25 - 1.0, 0.0)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["cycle_l1_b"], np.mean(np.maximum(0.25 - b, 0.0)),
                               rtol=1e-6, atol=1e-7)
    assert out["num_examples_a"] == 5 and out["num_examples_b"] == 7
    assert out["pixel_l1"] == out["label_accuracy"] == "skipped: no pairs"


def test_pair_keys_and_means():
    assert pair_key("pixel_l1", "a_to_b") == "pixel_l1_a_to_b"
    assert pair_key("pixel_l1_identity_baseline", "a_to_b") == "pixel_l1_a_to_b_identity_baseline"
    assert pair_key("label_accuracy_ground_truth", "a_to_b") == "label_accuracy_a_to_b_ground_truth"
    means = pair_means([{"x": 1.0, "y": 0.0}, {"x": 2.0, "y": 1.0}], "_s")
    assert means == {"x_s": 1.5, "y_s": 0.5}
    with pytest.raises(ValueError, match="at least one pair"):
        pair_means([])
    assert mean_l1(np.zeros(3), np.array([0.0, 1.0, 2.0])) == 1.0
    with pytest.raises(ValueError, match="one shape"):
        mean_l1(np.zeros(3), np.zeros(4))


NAMES = ("original", "rot90", "thick")
DOMAIN_CLASSES = (0, 2, 3)  # the domain classifier's class of each domain (DOMAINS.index)


def _three_views() -> np.ndarray:
    """(N, 3, 3, 3, 1) views: pixel (0, 0) holds the domain class / 3 (the domain classifier
    reads it), pixel (0, 1) the digit / 9; the other 7 pixels are the base image + 0.1 d."""
    base = np.random.default_rng(3).uniform(0.0, 0.7, size=(N, 3, 3, 1))
    views = np.stack([base + 0.1 * d for d in range(3)], axis=1)
    views[:, :, 0, 0, 0] = np.array(DOMAIN_CLASSES)[None, :] / 3
    views[:, :, 0, 1, 0] = LABELS[:, None] / 9
    return views


DOMAIN = CodeClassifier(0, 0, 3, 4)


def _restyle(images, t):
    """Writes the target's domain code and keeps the rest (pixel L1 to the truth: the 0.1 d
    shift of the 7 other pixels)."""
    out = np.array(images)
    out[:, 0, 0, 0] = DOMAIN_CLASSES[t] / 3
    return out


def test_multi_domain_table_of_a_known_translator():
    views = _three_views()
    first_only = lambda images: np.eye(3)[np.zeros(len(images), int)]  # D_cls: always domain 0
    out = multi_domain_metrics(_restyle, views, LABELS, NAMES, domain_classes=DOMAIN_CLASSES,
                               classifier=DIGITS, domain_classifier=DOMAIN,
                               domain_logits=first_only)
    pairs = [(s, t) for s in range(3) for t in range(3) if s != t]
    for s, t in pairs:
        p = f"{NAMES[s]}_to_{NAMES[t]}"
        # 7 of 9 pixels off by 0.1 |s - t|; doing nothing is also off in the domain pixel.
        np.testing.assert_allclose(out[f"pixel_l1_{p}"], 7 / 9 * 0.1 * abs(s - t), rtol=1e-6)
        np.testing.assert_allclose(
            out[f"pixel_l1_{p}_identity_baseline"],
            (7 * 0.1 * abs(s - t) + abs(DOMAIN_CLASSES[s] - DOMAIN_CLASSES[t]) / 3) / 9,
            rtol=1e-6)
        assert out[f"cycle_l1_{p}"] == 0.0  # G(G(x, t), s) writes the source code back
        assert out[f"domain_accuracy_{p}"] == out[f"label_accuracy_{p}"] == 1.0
        assert out[f"label_accuracy_{p}_ground_truth"] == 1.0
    # Averages: |s - t| over the 6 ordered pairs is 8 / 6; without rot90 only 0 <-> 2 remain.
    np.testing.assert_allclose(out["pixel_l1"], 7 / 90 * 8 / 6, rtol=1e-6)
    np.testing.assert_allclose(out["pixel_l1_without_rot90"], 7 / 90 * 2, rtol=1e-6)
    assert out["num_domain_pairs"] == 6 and out["num_domain_pairs_without_rot90"] == 2
    assert out["domain_accuracy"] == out["label_accuracy_without_rot90"] == 1.0
    assert out["domain_accuracy_ground_truth"] == 1.0
    # D_cls always answering domain 0 is right on one domain of three.
    np.testing.assert_allclose(out["discriminator_domain_accuracy_real"], 1 / 3, rtol=1e-12)
    assert list(out)[:3] == ["num_examples", "discriminator_domain_accuracy_real",
                             "pixel_l1_original_to_rot90"]


def test_multi_domain_doing_nothing_misses_every_target_domain():
    views = _three_views()
    out = multi_domain_metrics(lambda images, t: images, views, LABELS, NAMES,
                               domain_classes=DOMAIN_CLASSES, classifier=DIGITS,
                               domain_classifier=DOMAIN)
    assert out["domain_accuracy"] == 0.0 and out["domain_accuracy_ground_truth"] == 1.0
    assert out["pixel_l1"] == out["pixel_l1_identity_baseline"] and out["cycle_l1"] == 0.0
    assert "discriminator_domain_accuracy_real" not in out


def test_multi_domain_without_classifiers_or_rot90():
    views = _three_views()
    out = multi_domain_metrics(_restyle, views, LABELS, ("original", "inverted", "thick"),
                               domain_classes=DOMAIN_CLASSES, classifier="skipped: digit",
                               domain_classifier="skipped: domain")
    assert out["label_accuracy"] == "skipped: digit" and out["domain_accuracy"] == "skipped: domain"
    assert not [k for k in out if k.startswith(("label_accuracy_", "domain_accuracy_"))]
    assert not [k for k in out if "without" in k]  # no rot90 among the domains
    assert out["num_domain_pairs"] == 6 and "pixel_l1" in out and "cycle_l1" in out
    with pytest.raises(ValueError, match="one class per domain"):
        multi_domain_metrics(_restyle, views, LABELS, NAMES, domain_classes=(0, 1),
                             classifier=DIGITS, domain_classifier=DOMAIN)
