"""Conditional GAN on scikit-learn's 8x8 digits: label accuracy of class-conditional samples.

Command:   genjax train cgan_digits --workdir runs/cgan_digits \\
               --set model.classifier_workdir=runs/classifier_digits
           (the classifier run: genjax train classifier_digits --workdir runs/classifier_digits)
Run time:  124 s wall (84 s CPU user), evaluation included, on 2 shared CPU cores (x86,
           jax 0.10.2, CPU backend, other jobs running), measured with this config.
Protocol:  pixels in [-1, 1]; labels embedded (16-d, learned) and concatenated to z in G and to
           the flattened image in D (Mirza & Osindero 2014); G z ~ N(0, I_32) -> 256-256 ReLU ->
           64 tanh; D 256-256 leaky ReLU -> 1 logit; non-saturating G loss, Adam 2e-4 b1 0.5,
           batch 64, 5000 steps. Evaluation: classifier_digits accuracy on 10,000 samples whose
           requested class cycles 0..9 (label_accuracy), and FD-digits-cnn / KD /
           precision-recall of those samples vs the 300 test images.
Expected:  measured (seed 0, classifier_digits checkpoint sha256 49f3711c...): label accuracy
           0.988 of 10,000 samples; FD-digits-cnn 3.13, KD 0.038 +- 0.156, precision 0.866,
           recall 0.450. No paper anchor (the cGAN paper reports only a Parzen estimate on MNIST).
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="gan", architecture="mlp", conditional=True, latent_dim=32,
                        hidden=(256, 256), metric_samples=10000),
        data=DataConfig(name="digits", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=64, num_steps=5000, log_every=100, eval_every=2500, checkpoint_every=2500,
        ),
        eval=EvalConfig(batch_size=500, num_samples=100),
    )
