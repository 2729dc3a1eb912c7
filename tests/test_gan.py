"""A few training steps of each adversarial variant on the embedded digits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, TrainConfig
from genjax.train.loop import Trainer

CASES = {
    "gan_mlp_nonsaturating": GANConfig(variant="gan", hidden=(32,), latent_dim=8),
    "gan_mlp_minimax": GANConfig(variant="gan", generator_loss="minimax", hidden=(32,), latent_dim=8),
    "dcgan": GANConfig(variant="gan", architecture="dcgan", base_features=4, latent_dim=8),
    "wgan": GANConfig(variant="wgan", hidden=(32,), latent_dim=8, n_critic=2),
    "wgan_gp": GANConfig(variant="wgan_gp", architecture="dcgan", base_features=4,
                         discriminator_norm="layer", latent_dim=8, n_critic=2),
    "cgan": GANConfig(variant="gan", conditional=True, hidden=(32,), latent_dim=8),
    "bigan": GANConfig(variant="bigan", hidden=(32,), latent_dim=8),
    "gan_maxout_dropout": GANConfig(variant="gan", hidden=(32,), latent_dim=8,
                                    discriminator_hidden=(24, 16),
                                    discriminator_activation="maxout", maxout_pieces=3,
                                    discriminator_dropout=(0.2, 0.5)),
}


def _config(model: GANConfig) -> Config:
    return Config(
        method="gan",
        model=dataclasses.replace(model, metric_samples=100),  # keeps evaluation small
        data=DataConfig(name="digits", preprocess="symmetric"),
        train=TrainConfig(batch_size=20, num_steps=10, progress=False),
        eval=EvalConfig(batch_size=50, num_samples=16),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_variant_trains_a_few_steps(name, tmp_path):
    trainer = Trainer(_config(CASES[name]), None)
    for _ in range(3):
        metrics = trainer.step()
    assert trainer.num_traces == 1
    assert np.isfinite(metrics["generator/loss"]) and np.isfinite(metrics["discriminator/loss"])
    if name == "wgan":  # the critic's weights stay inside [-c, c] after every update
        import jax

        leaves = jax.tree.leaves(trainer.state.models["discriminator"].params)
        assert max(float(np.abs(np.asarray(p)).max()) for p in leaves) <= 0.01
    if name == "wgan_gp":
        assert metrics["discriminator/gradient_penalty"] >= 0
    if name == "bigan":
        assert "encoder" in trainer.state.models
    samples = trainer.method.sample(trainer.state, trainer.eval_key(), 6)
    assert samples.shape == (6, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    paths = trainer.write_pictures(tmp_path)
    assert all(p.exists() for p in paths)
    assert np.isfinite(trainer.evaluate()["eval_real_score"])


def test_wgan_gp_refuses_batch_norm_critic():
    with pytest.raises(ValueError, match="discriminator_norm"):
        Trainer(_config(GANConfig(variant="wgan_gp", architecture="dcgan")), None)


def test_batch_must_split_over_critic_updates():
    with pytest.raises(ValueError, match="n_critic"):
        Trainer(_config(GANConfig(variant="wgan", n_critic=3)), None)


def test_maxout_is_the_max_over_pieces_of_one_dense_layer():
    import jax

    from genjax.models.gan import Maxout

    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    layer = Maxout(units=4, pieces=3)
    variables = layer.init(jax.random.key(1), x)
    kernel = np.asarray(variables["params"]["Dense_0"]["kernel"])  # (7, 12)
    bias = np.asarray(variables["params"]["Dense_0"]["bias"])
    affine = x.astype(np.float64) @ kernel + bias  # (5, 12): unit i owns columns 3i..3i+2
    expected = np.stack([affine[:, 3 * i : 3 * i + 3].max(axis=1) for i in range(4)], axis=1)
    np.testing.assert_allclose(np.asarray(layer.apply(variables, x)), expected, rtol=1e-5,
                               atol=1e-6)


def test_discriminator_dropout_is_random_in_training_and_off_in_evaluation():
    import jax

    from genjax.models.gan import MLPDiscriminator

    x = np.random.default_rng(0).uniform(-1, 1, size=(6, 8, 8, 1)).astype(np.float32)
    d = MLPDiscriminator(hidden=(16, 16), activation="maxout", pieces=2, input_dropout=0.2,
                         hidden_dropout=0.5)
    plain = d.clone(input_dropout=0.0, hidden_dropout=0.0)
    variables = d.init(jax.random.key(0), x, train=False)
    evaluated = np.asarray(d.apply(variables, x, train=False))
    np.testing.assert_array_equal(evaluated, np.asarray(plain.apply(variables, x, train=True)))
    a = np.asarray(d.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}))
    b = np.asarray(d.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}))
    c = np.asarray(d.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, evaluated)


def test_dropout_training_is_reproducible_and_uses_the_dropout_key():
    import jax

    config = _config(CASES["gan_maxout_dropout"])
    runs = []
    for _ in range(2):
        trainer = Trainer(config, None)
        trainer.step()
        runs.append(jax.tree.leaves(trainer.state.models["discriminator"].params))
    for p, q in zip(*runs, strict=True):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    method = trainer.method
    assert method._d_dropout
    with pytest.raises(ValueError, match="dropout_key"):
        d = trainer.state.models["discriminator"]
        method.discriminate(d.params, d.collections, np.zeros((2, 8, 8, 1), np.float32), None)


@pytest.mark.parametrize(
    "model, match",
    [
        (GANConfig(discriminator_activation="relu"), "discriminator_activation"),
        (GANConfig(discriminator_activation="maxout", maxout_pieces=0), "maxout_pieces"),
        (GANConfig(discriminator_dropout=(0.2, 1.0)), "discriminator_dropout"),
        (GANConfig(discriminator_dropout=(0.5,)), "discriminator_dropout"),
        (GANConfig(architecture="dcgan", discriminator_activation="maxout"), "MLP discriminator"),
        (GANConfig(variant="bigan", discriminator_dropout=(0.2, 0.5)), "MLP discriminator"),
    ],
)
def test_bad_discriminator_options_are_clear_errors(model, match):
    with pytest.raises(ValueError, match=match):
        Trainer(_config(model), None)
