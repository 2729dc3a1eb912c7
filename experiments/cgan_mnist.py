"""Conditional GAN on MNIST (Mirza & Osindero 2014): G and D both see the class label.

Command:   genjax train cgan_mnist --workdir runs/cgan_mnist --set data.manual_dir=PATH_TO_MNIST_GZ \\
               --set model.classifier_workdir=runs/classifier_mnist
Run time:  not measured here (CPU only in this session).
Protocol:  MNIST 60k train, pixels in [-1, 1]; labels embedded (16-d, learned) and concatenated
           to z in G and to the flattened image in D; G z ~ N(0, I_100) -> 256-512-1024 ReLU ->
           784 tanh; D 1024-512-256 leaky ReLU -> 1 logit (the paper uses maxout and dropout in
           D). Non-saturating G loss, Adam 2e-4 b1 0.5, batch 100, 30,000 steps (50 epochs).
           Evaluation: the classifier_mnist CNN's accuracy on 10,000 samples whose requested class
           cycles 0..9 (label_accuracy), plus FD-mnist-cnn / KD / precision-recall vs the test set.
Expected:  not measured here. Anchor: the paper reports only a Parzen-window log-likelihood,
           132 +- 1.8 nats on the MNIST test set (Mirza & Osindero 2014, Table 1), not computed
           by this config; label accuracy has no paper anchor.
"""

from genjax.methods.gan import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="gan", architecture="mlp", conditional=True, latent_dim=100,
                        hidden=(256, 512, 1024), metric_samples=10000),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=100, num_steps=30000, log_every=100, eval_every=6000, checkpoint_every=3000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=100),
    )
