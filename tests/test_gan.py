"""A few training steps of each adversarial variant on the embedded digits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genjax.methods.gan import GANConfig
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
