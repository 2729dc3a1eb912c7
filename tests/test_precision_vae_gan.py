"""Mixed precision (``train.compute_dtype=bfloat16``) of the VAE, GAN and classifier families.

The contract (genjax.train.precision): parameters, optimizer states and batch-norm statistics
stay float32; modules compute in their ``dtype``; their outputs, every loss and every metric
are float32. What is checked here, per family:

* the modules: with ``dtype=bfloat16`` the same parameter tree is created (same names, shapes,
  values, float32), the matmuls and convolutions really run in bfloat16, outputs are float32;
* the loss on one batch with the *same* float32 parameters agrees with the float32 loss within
  the first-order bound of bfloat16 rounding (below), the loss is float32 and the gradients
  with respect to the float32 parameters are float32 and finite;
* a short bfloat16 training run of the family's digits config (tiny model) learns (VAE,
  classifier: the loss decreases) or stays finite and moves the parameters (GANs), and its
  evaluation reports float32 numbers.

That float32 runs are unchanged bit for bit is what the existing tests of these families check.

Tolerances. bfloat16 keeps 8 significant bits, so rounding a number to bfloat16 changes it by
a relative error of at most ``u = 2**-8`` (unit roundoff). A bfloat16 network rounds its float32
input once, each Dense/Conv layer's kernel and output (its products are accumulated in float32
by XLA), and the output of each nonlinearity and normalisation. To first order the relative
errors of the roundings along the longest path from the input to the loss add up, so the loss
differs from the float32 loss by at most ``n * u`` relative to its scale, where ``n`` counts
those roundings; each test lists its count. The losses compared are sums of non-negative terms
at initialisation (negative ELBO / IWAE bound, cross-entropies), so their scale is their value;
the WGAN-GP critic loss is signed, so its scale is the sum of the magnitudes of its terms.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data import load_dataset
from genjax.experiments import load_config
from genjax.losses import gradient_penalty, nonsaturating_generator_loss, softmax_cross_entropy
from genjax.methods.classifier import ClassifierMethod
from genjax.methods.gan import GANMethod
from genjax.methods.vae import VAEMethod
from genjax.models.classifier import CNNClassifier
from genjax.models.gan import (
    BiGANEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    JointDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
)
from genjax.models.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from genjax.train.loop import Trainer
from genjax.train.method import DataSpec

BF16 = "train.compute_dtype=bfloat16"
DIGITS = DataSpec(shape=(8, 8, 1), num_bits=8, num_classes=10, name="digits")
UNIT_ROUNDOFF = 2.0**-8  # bfloat16: 8 significant bits (7 stored + the implicit one)


def first_order_rtol(roundings: int) -> float:
    """The first-order bound ``n * u`` on the relative error after ``n`` bfloat16 roundings."""
    return roundings * UNIT_ROUNDOFF


def _matmul_input_dtypes(jaxpr) -> list[tuple]:
    """Operand dtypes of every dot_general and conv in ``jaxpr`` and its sub-jaxprs."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            found.append(tuple(v.aval.dtype for v in eqn.invars))
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    found += _matmul_input_dtypes(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    found += _matmul_input_dtypes(sub)
    return found


def _digits(n: int) -> tuple[jax.Array, jax.Array]:
    """The first ``n`` training digits (uint8 pixels) and their labels."""
    data = load_dataset("digits", "train")
    return jnp.asarray(data.images[:n]), jnp.asarray(data.labels[:n])


def _assert_float32_tree(tree, what: str) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            assert leaf.dtype == jnp.float32, f"{what}{jax.tree_util.keystr(path)}: {leaf.dtype}"


def _assert_float32_finite_grads(grads) -> None:
    leaves = jax.tree.leaves(grads)
    assert leaves
    for g in leaves:
        assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))


# -- modules -------------------------------------------------------------------------------------

X = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, size=(4, 8, 8, 1)), jnp.float32)
Z = jnp.asarray(np.random.default_rng(1).normal(size=(4, 6)), jnp.float32)
Y = jnp.array([0, 3, 1, 2])

MODULES = {
    "mlp_encoder": (MLPEncoder(6, hidden=(16,)), (X,), {}),
    "conv_encoder": (ConvEncoder(6, features=(4, 8), dense=16), (X,), {}),
    "mlp_decoder_bernoulli": (MLPDecoder((8, 8, 1), hidden=(16,)), (Z,), {}),
    "conv_decoder_gaussian": (
        ConvDecoder((8, 8, 1), features=(8, 4), dense=16, likelihood="gaussian"), (Z,), {}),
    "mlp_generator_conditional": (MLPGenerator((8, 8, 1), hidden=(16,), num_classes=4), (Z, Y),
                                  {"train": False}),
    "mlp_discriminator_maxout": (
        MLPDiscriminator(hidden=(12,), activation="maxout", pieces=3, num_classes=4), (X, Y),
        {"train": False}),
    "dcgan_generator_batch_norm": (
        DCGANGenerator((8, 8, 1), base_features=4, num_classes=4), (Z, Y), {"train": False}),
    "dcgan_discriminator_layer_norm": (
        DCGANDiscriminator(base_features=4, norm="layer", num_classes=4), (X, Y),
        {"train": False}),
    "bigan_encoder": (BiGANEncoder(6, hidden=(16,)), (X,), {"train": False}),
    "joint_discriminator": (JointDiscriminator(hidden=(16, 8)), (X, Z), {"train": False}),
    "classifier": (CNNClassifier(10, conv_features=(4, 8), dense=16), (X,), {}),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_bfloat16_modules_keep_float32_params_compute_in_bfloat16_and_return_float32(name):
    module, args, kwargs = MODULES[name]
    assert module.dtype == jnp.float32  # the default: float32 runs are unchanged
    low = module.clone(dtype=jnp.bfloat16)
    key = jax.random.key(7)
    variables = module.init(key, *args, **kwargs)
    low_variables = low.init(key, *args, **kwargs)
    # Same parameter tree (names, shapes, float32 values) and batch statistics.
    assert jax.tree.structure(variables) == jax.tree.structure(low_variables)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(low_variables), strict=True):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Every matmul and convolution runs on bfloat16 operands.
    jaxpr = jax.make_jaxpr(lambda v: low.apply(v, *args, **kwargs))(variables)
    operands = _matmul_input_dtypes(jaxpr.jaxpr)
    assert operands and all(d == jnp.bfloat16 for ops in operands for d in ops), operands
    # Outputs are float32 and close to the float32 module's.
    outputs = jax.tree.leaves(jax.jit(lambda v: module.apply(v, *args, **kwargs))(variables))
    low_outputs = jax.tree.leaves(jax.jit(lambda v: low.apply(v, *args, **kwargs))(variables))
    for a, b in zip(outputs, low_outputs, strict=True):
        assert a.dtype == b.dtype == jnp.float32 and a.shape == b.shape
        assert bool(jnp.all(jnp.isfinite(b)))
    if name == "classifier":  # the feature-metric entry point: float32 features
        f, logits = low.apply(variables, X, method=CNNClassifier.features_and_logits)
        assert f.dtype == logits.dtype == jnp.float32


# -- VAE -------------------------------------------------------------------------------------

VAE_TINY = ["model.latent_dim=4", "train.batch_size=20", "train.progress=false",
            "eval.iwae_samples=500", "eval.iwae_batch_size=50", "eval.max_examples=100",
            "eval.num_samples=16"]

# (overrides, roundings on the longest path x -> loss; see the module docstring).
VAE_CASES = {
    # Encoder: input 1 + Dense 2 + tanh 1 + Dense 2 = 6; decoder: z 1 + Dense 2 + tanh 1 +
    # Dense 2 = 6.
    "mlp_bernoulli_elbo": (["model.hidden=(32,)"], 12),
    # Encoder: input 1 + 2 x (Conv 2 + relu 1) + Dense 2 + relu 1 + Dense 2 = 12; decoder: z 1 +
    # 2 x (Dense 2 + relu 1) + 2 x (ConvTranspose 2 + relu 1) + Conv 2 = 15.
    "conv_gaussian_iwae": (["model.architecture=conv", "model.conv_features=(8,16)",
                            "model.activation=relu", "model.likelihood=gaussian",
                            "data.preprocess=dequantize", "model.objective=iwae",
                            "model.num_samples=5"], 27),
}


@pytest.mark.parametrize("case", [  # the conv IWAE case compiles for ~35 s: -m slow
    pytest.param(c, marks=pytest.mark.slow) if c.startswith("conv") else c for c in sorted(VAE_CASES)])
def test_vae_bfloat16_loss_matches_float32_with_the_same_params(case):
    overrides, roundings = VAE_CASES[case]
    method32 = VAEMethod(load_config("vae_digits", VAE_TINY + overrides), DIGITS)
    method16 = VAEMethod(load_config("vae_digits", VAE_TINY + overrides + [BF16]), DIGITS)
    images, _ = _digits(20)
    params = method32.init(jax.random.key(0), {"image": images})["vae"].params
    x = method32.prepare(jax.random.key(1), images, train=True)
    key = jax.random.key(2)
    loss32, _ = jax.jit(method32.objective)(params, key, x)
    (loss16, terms), grads = jax.jit(jax.value_and_grad(method16.objective, has_aux=True))(
        params, key, x)
    assert loss16.dtype == jnp.float32 and all(t.dtype == jnp.float32 for t in terms.values())
    assert float(loss32) > 0  # a sum of non-negative terms at initialisation: scale = value
    assert abs(float(loss16) - float(loss32)) <= first_order_rtol(roundings) * float(loss32)
    assert float(loss16) != float(loss32)  # the bfloat16 path was taken
    _assert_float32_finite_grads(grads)
    # The K-sample estimator: float32 log-weights and estimates.
    assert method16.log_weights(params, key, x, 3).dtype == jnp.float32


def test_vae_digits_trains_in_bfloat16_and_reports_float32_numbers():
    config = load_config("vae_digits", VAE_TINY + ["model.hidden=(32,)", BF16])
    trainer = Trainer(config, None)
    first = [trainer.step()["loss"] for _ in range(3)]
    for _ in range(40):
        last = trainer.step()["loss"]
    # A fresh Bernoulli decoder starts near 64 log 2 = 44 nats; 40 Adam steps at lr 1e-3 take
    # the negative ELBO of the binarized digits down by several nats.
    assert np.isfinite(last) and last < min(first)
    model = trainer.state.models["vae"]
    _assert_float32_tree(model.params, "params")
    _assert_float32_tree(model.opt_state, "opt_state")
    result = trainer.method.evaluate(trainer.state, trainer.eval_data, trainer.eval_key())
    for name in ("nll_iwae_nats", "neg_elbo_nats", "nll_iwae_bits_per_dim"):
        assert isinstance(result[name], float) and np.isfinite(result[name])
    assert result["nll_iwae_nats"] <= result["neg_elbo_nats"] + 1e-6
    samples = trainer.method.sample(trainer.state, jax.random.key(0), 4)
    assert samples.dtype == np.float32 and samples.min() >= 0 and samples.max() <= 1


# -- GANs --------------------------------------------------------------------------------------

GAN_TINY = ["model.latent_dim=8", "model.base_features=4", "model.hidden=(32,)",
            "model.metric_samples=100", "train.batch_size=20", "train.progress=false",
            "eval.batch_size=50", "eval.num_samples=16"]


def _gan_methods(name: str, overrides: list[str]):
    """Float32 and bfloat16 methods, the float32 models' states, real inputs and labels."""
    method32 = GANMethod(load_config(name, GAN_TINY + overrides), DIGITS)
    method16 = GANMethod(load_config(name, GAN_TINY + overrides + [BF16]), DIGITS)
    images, labels = _digits(20)
    models = method32.init(jax.random.key(0), {"image": images, "label": labels})
    real = method32.prepare(None, images)
    return method32, method16, models, real, labels


# (config, overrides, roundings on the longest path z -> G -> D -> loss).
GAN_CASES = {
    # G: z 1 + Dense 2 + BN 1 + relu 1 + ConvT 2 + BN 1 + relu 1 + ConvT 2 + tanh 1 = 12;
    # D: x 1 + Conv 2 + leaky 1 + Conv 2 + BN 1 + leaky 1 + Dense 2 = 10.
    "dcgan": ("dcgan_digits", [], 22),
    # G: z 1 + embedding 1 + Dense 2 + relu 1 + Dense 2 + tanh 1 = 8;
    # D: x 1 + embedding 1 + Dense 2 + leaky 1 + Dense 2 = 7.
    "cgan_mlp": ("cgan_digits", [], 15),
}


@pytest.mark.parametrize("case", sorted(GAN_CASES))
def test_gan_bfloat16_losses_match_float32_with_the_same_params(case):
    name, overrides, roundings = GAN_CASES[case]
    method32, method16, models, real, labels = _gan_methods(name, overrides)
    labels = labels if method32.num_classes else None
    g, d = models["generator"], models["discriminator"]
    z = jax.random.normal(jax.random.key(3), (real.shape[0], 8))
    key = jax.random.key(4)

    def d_loss(method, d_params):
        fake, _ = method.generate(g, z, labels, train=True)
        return method._critic_loss(d_params, d.collections, real, fake, labels, key, z, None,
                                   None)

    def g_loss(method, g_params):
        fake, _ = method.generate(g.replace(params=g_params), z, labels, train=True)
        assert fake.dtype == jnp.float32
        out, _ = method.discriminate(d.params, d.collections, fake, labels, z)
        return nonsaturating_generator_loss(out)

    rtol = first_order_rtol(roundings)
    methods = (method32, method16)
    (d32, _), (d16, _) = (jax.jit(lambda p, m=m: d_loss(m, p))(d.params) for m in methods)
    g32, g16 = (jax.jit(lambda p, m=m: g_loss(m, p))(g.params) for m in methods)
    for low, high in ((d16, d32), (g16, g32)):  # minimax D and non-saturating G: >= 0
        assert low.dtype == jnp.float32 and float(high) > 0
        assert abs(float(low) - float(high)) <= rtol * float(high)
        assert float(low) != float(high)
    (_, (_, new_collections)), d_grads = jax.jit(jax.value_and_grad(
        lambda p: d_loss(method16, p), has_aux=True))(d.params)
    _assert_float32_finite_grads(d_grads)
    _assert_float32_tree(new_collections, "discriminator batch_stats")
    _assert_float32_finite_grads(jax.jit(jax.grad(lambda p: g_loss(method16, p)))(g.params))


def test_wgan_gp_bfloat16_critic_loss_matches_float32_with_the_same_params():
    overrides = ["model.variant=wgan_gp", "model.discriminator_norm=layer",
                 "model.generator_norm=layer"]
    method32, method16, models, real, _ = _gan_methods("dcgan_digits", overrides)
    g, d = models["generator"], models["discriminator"]
    z = jax.random.normal(jax.random.key(3), (real.shape[0], 8))
    key = jax.random.key(4)

    def critic_loss(method, d_params):
        fake, _ = method.generate(g, z, None, train=True)
        loss, (terms, _) = method._critic_loss(d_params, {}, real, fake, None, key, z, None, None)
        return loss, terms

    (loss32, terms32), (loss16, terms16) = (
        jax.jit(lambda p, m=m: critic_loss(m, p))(d.params) for m in (method32, method16))
    assert loss16.dtype == jnp.float32
    assert all(t.dtype == jnp.float32 for t in terms16.values())
    # Scale: the magnitudes of the terms, mean|f(x)| + mean|f(G(z))| + lambda (E||g||^2 +
    # penalty): a relative error e of ||g|| changes (||g|| - 1)^2 by at most
    # 2 ||g|| |1 - ||g||| e <= (||g||^2 + (||g|| - 1)^2) e. All computed in float32.
    @jax.jit
    def magnitudes(d_params):
        fake32, _ = method32.generate(g, z, None, train=True)
        critic = lambda x: method32.discriminate(d_params, {}, x, None)[0]
        squared_norms = gradient_penalty(critic, real, fake32, key, target=0.0)
        return (jnp.mean(jnp.abs(critic(real))) + jnp.mean(jnp.abs(critic(fake32)))
                + 10.0 * (squared_norms + terms32["gradient_penalty"]))

    scale = float(magnitudes(d.params))
    # Roundings: G (z 1 + Dense 2 + LN 1 + relu 1 + ConvT 2 + LN 1 + relu 1 + ConvT 2 + tanh 1 =
    # 12), then D forward (x 1 + Conv 2 + leaky 1 + Conv 2 + LN 1 + leaky 1 + Dense 2 = 10) and,
    # for the penalty, D's backward pass through the same 10 roundings: 32.
    assert abs(float(loss16) - float(loss32)) <= first_order_rtol(32) * scale
    assert float(loss16) != float(loss32)
    grads = jax.jit(jax.grad(lambda p: critic_loss(method16, p)[0]))(d.params)
    _assert_float32_finite_grads(grads)


# (config, overrides): every variant and architecture, on the digits.
GAN_TRAINING = {
    "dcgan": ("dcgan_digits", []),
    "wgan_gp_dcgan": ("dcgan_digits", ["model.variant=wgan_gp", "model.discriminator_norm=layer",
                                       "model.n_critic=2"]),
    "wgan_mlp": ("dcgan_digits", ["model.variant=wgan", "model.architecture=mlp",
                                  "model.n_critic=2", "optim.name=rmsprop",
                                  "optim.learning_rate=5e-5"]),
    "maxout_dropout": ("dcgan_digits", ["model.architecture=mlp",
                                        "model.discriminator_activation=maxout",
                                        "model.maxout_pieces=3",
                                        "model.discriminator_dropout=(0.2,0.5)"]),
    "cgan": ("cgan_digits", []),
    "bigan": ("bigan_digits", []),
}


@pytest.mark.parametrize("case", [  # DCGAN by default, the other variants with -m slow
    c if c == "dcgan" else pytest.param(c, marks=pytest.mark.slow) for c in sorted(GAN_TRAINING)])
def test_gan_digits_trains_in_bfloat16(case):
    name, overrides = GAN_TRAINING[case]
    trainer = Trainer(load_config(name, GAN_TINY + overrides + [BF16]), None)
    before = jax.tree.map(np.asarray, {k: m.params for k, m in trainer.state.models.items()})
    for _ in range(3):
        metrics = trainer.step()
    assert np.isfinite(metrics["generator/loss"]) and np.isfinite(metrics["discriminator/loss"])
    wasserstein = trainer.config.model.variant in ("wgan", "wgan_gp")
    for k, model in trainer.state.models.items():
        _assert_float32_tree(model.variables, f"{k} variables")
        _assert_float32_tree(model.opt_state, f"{k} opt_state")
        moved = [not np.array_equal(a, np.asarray(b)) for a, b in
                 zip(jax.tree.leaves(before[k]), jax.tree.leaves(model.params), strict=True)]
        # A critic's output bias cancels in E f(x) - E f(G(z)) and is absent from the penalty:
        # it has no gradient under the Wasserstein losses, and stays where it was.
        frozen = 1 if wasserstein and k == "discriminator" else 0
        assert sum(moved) == len(moved) - frozen, f"{k}: moved {moved}"
    if case == "wgan_mlp":  # clipping acts on the float32 parameters
        leaves = jax.tree.leaves(trainer.state.models["discriminator"].params)
        assert max(float(np.abs(np.asarray(p)).max()) for p in leaves) <= 0.01
    if case.startswith("wgan_gp"):
        assert metrics["discriminator/gradient_penalty"] >= 0
    samples = trainer.method.sample(trainer.state, jax.random.key(0), 5)
    assert samples.dtype == np.float32 and samples.min() >= 0 and samples.max() <= 1
    result = trainer.method.evaluate(trainer.state, trainer.eval_data, trainer.eval_key())
    assert isinstance(result["eval_real_score"], float) and np.isfinite(result["eval_real_score"])


# -- classifier ----------------------------------------------------------------------------------

CLF_TINY = ["model.conv_features=(8,16)", "model.dense=32", "model.dropout_rate=0.0",
            "optim.learning_rate=3e-3", "train.batch_size=50", "train.progress=false"]


def test_classifier_bfloat16_loss_matches_float32_with_the_same_params():
    method32 = ClassifierMethod(load_config("classifier_digits", CLF_TINY), DIGITS)
    method16 = ClassifierMethod(load_config("classifier_digits", CLF_TINY + [BF16]), DIGITS)
    images, labels = _digits(50)
    x = method32.prepare(images)
    params = method32.init(jax.random.key(0), {"image": images})["classifier"].params

    def loss(method, p):
        return jnp.mean(softmax_cross_entropy(method.module.apply({"params": p}, x), labels))

    loss32 = jax.jit(lambda p: loss(method32, p))(params)
    loss16, grads = jax.jit(jax.value_and_grad(lambda p: loss(method16, p)))(params)
    # Roundings: input 1 + 2 x (Conv 2 + relu 1) + Dense 2 + relu 1 + Dense 2 = 12; the
    # cross-entropy is positive (about log 10 at initialisation): scale = value.
    assert loss16.dtype == jnp.float32 and float(loss32) > 0
    assert abs(float(loss16) - float(loss32)) <= first_order_rtol(12) * float(loss32)
    assert float(loss16) != float(loss32)
    _assert_float32_finite_grads(grads)


def test_classifier_trains_in_bfloat16_and_keeps_float32_features():
    config = load_config("classifier_digits", CLF_TINY + [BF16])
    trainer = Trainer(config, None)
    first = trainer.step()["loss"]
    for _ in range(30):
        last = trainer.step()["loss"]
    # About log 10 = 2.3 nats at initialisation; 30 Adam steps at 3e-3 roughly halve it.
    assert np.isfinite(last) and last < first
    model = trainer.state.models["classifier"]
    _assert_float32_tree(model.params, "params")
    _assert_float32_tree(model.opt_state, "opt_state")
    # Features and logits for FD / KD are computed in float32 whatever the training dtype: the
    # same checkpoint gives exactly the features of a float32-configured classifier.
    method32 = ClassifierMethod(dataclasses.replace(
        config, train=dataclasses.replace(config.train, compute_dtype="float32")),
        trainer.method.data)
    x = trainer.method.prepare(jnp.asarray(trainer.eval_data.images[:20]))
    f16, l16 = trainer.method.features_and_logits(trainer.state, x)
    f32, l32 = method32.features_and_logits(trainer.state, x)
    assert f16.dtype == l16.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(f16), np.asarray(f32))
    np.testing.assert_array_equal(np.asarray(l16), np.asarray(l32))
    result = trainer.method.evaluate(trainer.state, trainer.eval_data, None)
    assert 0.0 <= result["accuracy"] <= 1.0 and np.isfinite(result["nll_nats"])
