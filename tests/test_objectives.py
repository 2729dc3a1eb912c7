"""The losses a training step reports equal the papers' objectives, recomputed here.

For each GAN variant (Goodfellow et al. 2014: minimax and non-saturating; DCGAN; WGAN, Arjovsky
et al. 2017; WGAN-GP, Gulrajani et al. 2017; conditional GAN; BiGAN, Donahue et al. 2017) and
for CycleGAN (Zhu et al. 2017), one step of the engine runs on the digits; the objective is
then written out again from the papers' equations, in plain ``jax.numpy`` on the networks'
outputs (``module.apply``, no genjax loss function), from the same parameters, batch and noise
(the step's documented keys: ``state.step_keys``), and compared with what the step reported.

The discriminator's reported loss is its loss before its update (initial parameters); the
generator's is against the updated discriminator (read from the new state), as each paper's
alternating algorithm has it.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.experiments import load_config
from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, TrainConfig
from genjax.train.loop import Trainer

RTOL = 2e-5  # one float32 computation against another (jit vs eager op order)

# The default suite checks one config per objective; the others (more of the same code paths:
# the minimax generator loss, batch norm, n_critic 2) run with the slow tests.
SLOW = {"gan_minimax", "dcgan", "wgan_n_critic_2", "wgan_gp_n_critic_2"}
CASES = {
    "gan_nonsaturating": GANConfig(variant="gan", hidden=(32,), latent_dim=8),
    "gan_minimax": GANConfig(variant="gan", generator_loss="minimax", hidden=(32,), latent_dim=8),
    "dcgan": GANConfig(variant="gan", architecture="dcgan", base_features=4, latent_dim=8),
    "wgan": GANConfig(variant="wgan", hidden=(32,), latent_dim=8, n_critic=1),
    "wgan_n_critic_2": GANConfig(variant="wgan", hidden=(32,), latent_dim=8, n_critic=2),
    "wgan_gp": GANConfig(variant="wgan_gp", architecture="dcgan", base_features=4,
                         discriminator_norm="layer", latent_dim=8, n_critic=1),
    "wgan_gp_n_critic_2": GANConfig(variant="wgan_gp", architecture="dcgan", base_features=4,
                                    discriminator_norm="layer", latent_dim=8, n_critic=2),
    "cgan": GANConfig(variant="gan", conditional=True, hidden=(32,), latent_dim=8),
    "bigan": GANConfig(variant="bigan", hidden=(32,), latent_dim=8),
}


def _one_step(config):
    """(trainer, state before, state after, reported metrics, host batch) of step 0."""
    trainer = Trainer(config, None)
    before = jax.device_get(trainer.state)  # the step donates the state
    batch = trainer.host_batch(0)
    reported = trainer.step()
    return trainer, before, jax.device_get(trainer.state), reported, batch


def _train_mode(module, variables, *args):
    """A module's training-mode output; batch norm uses this call's batch statistics."""
    if set(variables) - {"params"}:
        return module.apply(variables, *args, train=True, mutable=["batch_stats"])[0]
    return module.apply(variables, *args, train=True)


def log_sigmoid(v):
    return -jnp.logaddexp(0.0, -v)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(CASES)])
def test_gan_step_reports_the_papers_objective(name):
    model = dataclasses.replace(CASES[name], metric_samples=100)
    config = Config(method="gan", model=model,
                    data=DataConfig(name="digits", preprocess="symmetric"),
                    train=TrainConfig(batch_size=20, num_steps=10, progress=False),
                    eval=EvalConfig(batch_size=50, num_samples=16))
    trainer, s0, s1, reported, batch = _one_step(config)
    method, cfg, n = trainer.method, model, model.n_critic
    keys = jax.device_put(s0).step_keys("data", "critic", "generator", "penalty")
    x = method.prepare(keys["data"], jnp.asarray(batch["image"]))
    labels = jnp.asarray(batch["label"]) if cfg.conditional else None
    g0, d0, d1 = s0.models["generator"], s0.models["discriminator"], s1.models["discriminator"]
    G = lambda g, z, y: _train_mode(method.generator, g.variables, z, y)
    D = lambda d, v, y: _train_mode(method.discriminator, d.variables, v, y).reshape(-1)

    # The generator's update: the last of the n critic parts (rows n-1, 2n-1, ...), fresh z.
    part = x[n - 1::n]
    y_part = None if labels is None else labels[n - 1::n]
    z_g = jax.random.normal(keys["generator"], (part.shape[0], cfg.latent_dim))
    if cfg.variant == "bigan":
        e0 = s0.models["encoder"]
        encode = lambda v: method.encoder.apply({"params": e0.params}, v)
        fake_scores = D(d1, G(g0, z_g, None), z_g)
        real_scores = D(d1, part, encode(part))
        # G and E minimise the discriminator's objective with the pairs' roles swapped.
        g_loss = -jnp.mean(log_sigmoid(fake_scores)) - jnp.mean(log_sigmoid(-real_scores))
    else:
        fake_scores = D(d1, G(g0, z_g, y_part), y_part)
        if cfg.variant in ("wgan", "wgan_gp"):
            g_loss = -jnp.mean(fake_scores)  # min_G -E[D(G(z))]
        elif cfg.generator_loss == "minimax":
            g_loss = jnp.mean(log_sigmoid(-fake_scores))  # min_G E[log(1 - D(G(z)))]
        else:
            g_loss = -jnp.mean(log_sigmoid(fake_scores))  # min_G -E[log D(G(z))]
    np.testing.assert_allclose(reported["generator/loss"], float(g_loss), rtol=RTOL)

    if n > 1:  # the reported critic loss is its last update's, on parameters not kept
        return
    # The critic's update (n = 1: on the initial parameters), on the whole batch, fresh z.
    z = jax.random.normal(jax.random.fold_in(keys["critic"], 0), (x.shape[0], cfg.latent_dim))
    if cfg.variant == "bigan":
        fake = G(g0, z, None)
        real_scores = D(d0, x, method.encoder.apply({"params": s0.models["encoder"].params}, x))
        fake_scores = D(d0, fake, z)
    else:
        fake = G(g0, z, labels)
        real_scores, fake_scores = D(d0, x, labels), D(d0, fake, labels)
    if cfg.variant in ("gan", "bigan"):
        # max_D E[log D(x)] + E[log(1 - D(G(z)))], as a loss to minimise.
        d_loss = -jnp.mean(log_sigmoid(real_scores)) - jnp.mean(log_sigmoid(-fake_scores))
    else:
        d_loss = jnp.mean(fake_scores) - jnp.mean(real_scores)  # -(E[D(x)] - E[D(G(z))])
        np.testing.assert_allclose(reported["discriminator/wasserstein_estimate"],
                                   float(-d_loss), rtol=RTOL, atol=1e-6)
        if cfg.variant == "wgan_gp":
            # lambda * E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z).
            eps = jax.random.uniform(jax.random.fold_in(keys["penalty"], 0),
                                     (x.shape[0], 1, 1, 1))
            x_hat = eps * x + (1.0 - eps) * fake
            grads = jax.grad(lambda v: jnp.sum(D(d0, v, labels)))(x_hat)
            norms = jnp.sqrt(jnp.sum(grads.reshape(x.shape[0], -1) ** 2, axis=1))
            penalty = jnp.mean((norms - 1.0) ** 2)
            np.testing.assert_allclose(reported["discriminator/gradient_penalty"],
                                       float(penalty), rtol=RTOL)
            d_loss = d_loss + cfg.gp_weight * penalty
    np.testing.assert_allclose(reported["discriminator/loss"], float(d_loss), rtol=RTOL)


@pytest.mark.parametrize("adversarial", ["least_squares",
                                         pytest.param("nonsaturating", marks=pytest.mark.slow)])
def test_cyclegan_step_reports_the_papers_objective(adversarial):
    config = load_config("cyclegan_digits", [
        "train.batch_size=8", "model.base_features=4", "model.num_blocks=1",
        "model.discriminator_features=4", "train.progress=false",
        f"model.adversarial_loss={adversarial}"])
    trainer, s0, _, reported, batch = _one_step(config)
    method, cfg = trainer.method, config.model
    images = jnp.asarray(batch["image"])
    # Unpaired halves: even rows are X, odd rows Y (each shown in its domain's view).
    x = method.view(images[0::2], method.domains[0])
    y = method.view(images[1::2], method.domains[1])
    m = s0.models
    G = lambda v: method.generator.apply({"params": m["generator_xy"].params}, v)
    F = lambda v: method.generator.apply({"params": m["generator_yx"].params}, v)
    D_X = lambda v: method.discriminator.apply({"params": m["discriminator_x"].params}, v)
    D_Y = lambda v: method.discriminator.apply({"params": m["discriminator_y"].params}, v)
    l1 = lambda a, b: jnp.mean(jnp.abs(a - b))
    if adversarial == "least_squares":  # LSGAN (Mao et al.), the paper's choice
        adv_g = lambda s: jnp.mean((s - 1.0) ** 2)
        adv_d = lambda r, f: 0.5 * (jnp.mean((r - 1.0) ** 2) + jnp.mean(f**2))
    else:
        adv_g = lambda s: -jnp.mean(log_sigmoid(s))
        adv_d = lambda r, f: 0.5 * (-jnp.mean(log_sigmoid(r)) - jnp.mean(log_sigmoid(-f)))
    # Eq. 1-3: L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc, plus the identity term (Sec. 5.2).
    adversarial_term = adv_g(D_Y(G(x))) + adv_g(D_X(F(y)))
    cycle = l1(F(G(x)), x) + l1(G(F(y)), y)
    identity = l1(G(y), y) + l1(F(x), x)
    total = (adversarial_term + cfg.lambda_cyc * cycle
             + cfg.lambda_identity * cfg.lambda_cyc * identity)
    for key, value in (("adversarial", adversarial_term), ("cycle", cycle),
                       ("identity", identity), ("loss", total)):
        np.testing.assert_allclose(reported[f"generator/{key}"], float(value), rtol=RTOL)
    # The discriminators, on real images and on the generated ones; at step 0 every pool is
    # empty, so it returns each generated image itself (Shrivastava et al.'s buffer filling).
    np.testing.assert_allclose(reported["discriminator_y/loss"], float(adv_d(D_Y(y), D_Y(G(x)))),
                               rtol=RTOL)
    np.testing.assert_allclose(reported["discriminator_x/loss"], float(adv_d(D_X(x), D_X(F(y)))),
                               rtol=RTOL)


def test_stargan_step_reports_the_papers_objective():
    config = load_config("stargan_digits", [
        "model.domains=original,inverted,thick", "model.n_critic=1", "train.batch_size=12",
        "model.base_features=4", "model.num_blocks=1", "model.discriminator_features=4",
        "train.progress=false"])
    trainer, s0, s1, reported, batch = _one_step(config)
    method, cfg, k = trainer.method, config.model, len(config.model.domains)
    keys = jax.device_put(s0).step_keys("target", "penalty")
    pixels = jnp.asarray(batch["image"])
    # Example i is shown in source domain c_i = i mod K; its target c'_i is a permutation of
    # the batch's source labels (the reference code's random target labels).
    c = jnp.arange(len(pixels)) % k
    x = jnp.concatenate([method.view(pixels[i:i + 1], method.domains[int(c[i])])
                         for i in range(len(pixels))])
    c_target = jax.random.permutation(jax.random.fold_in(keys["target"], 0), c)
    g0 = s0.models["generator"].params
    G = lambda v, labels: method.generator.apply({"params": g0}, v, jax.nn.one_hot(labels, k))
    D = lambda params, v: method.discriminator.apply({"params": params}, v)  # (src map, cls)

    def cross_entropy(logits, labels):  # softmax CE for single-label domains (RaFD form)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    # D (Eq. 1 with WGAN-GP's penalty, and Eq. 2): -D_src(x) + D_src(G(x, c')) + lambda_cls
    # L_cls^r + lambda_gp (||grad D_src(x_hat)|| - 1)^2, on the initial parameters.
    d0 = s0.models["discriminator"].params
    fake = G(x, c_target)
    real_src, real_cls = D(d0, x)
    adversarial = jnp.mean(D(d0, fake)[0]) - jnp.mean(real_src)
    classification = cross_entropy(real_cls, c)
    eps = jax.random.uniform(jax.random.fold_in(keys["penalty"], 0), (len(x), 1, 1, 1))
    x_hat = eps * x + (1.0 - eps) * fake
    grads = jax.grad(lambda v: jnp.sum(D(d0, v)[0]))(x_hat)
    penalty = jnp.mean((jnp.sqrt(jnp.sum(grads.reshape(len(x), -1) ** 2, axis=1)) - 1.0) ** 2)
    d_loss = adversarial + cfg.lambda_cls * classification + cfg.lambda_gp * penalty
    for key, value in (("adversarial", adversarial), ("classification", classification),
                       ("gradient_penalty", penalty), ("loss", d_loss)):
        np.testing.assert_allclose(reported[f"discriminator/{key}"], float(value), rtol=RTOL)

    # G (Eq. 1, 3, 4) against the updated D: -D_src(G(x, c')) + lambda_cls L_cls^f
    # + lambda_rec ||x - G(G(x, c'), c)||_1.
    d1 = s1.models["discriminator"].params
    fake_src, fake_cls = D(d1, fake)
    adversarial = -jnp.mean(fake_src)
    classification = cross_entropy(fake_cls, c_target)
    reconstruction = jnp.mean(jnp.abs(x - G(fake, c)))
    g_loss = (adversarial + cfg.lambda_cls * classification
              + cfg.lambda_rec * reconstruction)
    for key, value in (("adversarial", adversarial), ("classification", classification),
                       ("reconstruction", reconstruction), ("loss", g_loss)):
        np.testing.assert_allclose(reported[f"generator/{key}"], float(value), rtol=RTOL)
