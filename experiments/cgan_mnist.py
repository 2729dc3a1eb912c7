"""Conditional GAN on MNIST (Mirza & Osindero 2014): G and D both see the class label.

Command:   genjax train cgan_mnist --workdir runs/cgan_mnist --set data.manual_dir=PATH_TO_MNIST_GZ \\
               --set model.classifier_workdir=runs/classifier_mnist
Run time:  measured: 30,000 steps in 23.4 min wall (1404 s, incl. five evaluations of ~25 s each)
           on 2 shared CPU cores (x86, jax 0.10.2, CPU backend, other jobs running: 13-25 steps/s).
Protocol:  MNIST train[:50000] for training (train[50000:51000] held out for the Parzen
           bandwidth, as Goodfellow et al.'s protocol that Mirza & Osindero follow), pixels in
           [-1, 1]; labels embedded (16-d, learned) and concatenated to z in G and to the
           flattened image in D; G z ~ N(0, I_100) -> 256-512-1024 ReLU -> 784 tanh; D
           1024-512-256 leaky ReLU -> 1 logit (the paper uses maxout and dropout in D).
           Non-saturating G loss, Adam 2e-4 b1 0.5, batch 100, 30,000 steps (60 epochs).
           Evaluation: the classifier_mnist CNN's accuracy on 10,000 samples whose requested
           class cycles 0..9 (label_accuracy); FD-mnist-cnn / KD / improved precision-recall
           (k=3) of the 10,000 samples vs the 10,000 test images; Parzen window: the 10,000
           class-balanced samples as kernel centres, sigma from logspace(-1, 0, 10) chosen on
           the held-out 1,000, mean log p(x) of the 10,000 test images +- std / sqrt(10,000).
Expected:  measured (seed 0, classifier_mnist checkpoint sha256 619d9a86..., step 3000):
           label accuracy 0.9841; FD-mnist-cnn 20.57 (floor, 10k train vs 10k test images:
           1.45), KD-mnist-cnn 2.79 +- 0.61, precision 0.859, recall 0.013 (floor 0.856 /
           0.872: samples are realistic but cover little of the test set's feature manifold);
           Parzen 88.6 +- 1.8 nats (sigma 0.215). At steps 6k / 12k / 18k: FD 125.3 / 58.6 /
           28.4, label accuracy 0.777 / 0.936 / 0.951, Parzen -3.6 / 50.9 / 84.6.
           Anchor: Parzen 132 +- 1.8 nats on the MNIST test set (Mirza & Osindero 2014,
           Table 1; their D: maxout with dropout, their training length not stated); label
           accuracy has no paper anchor.
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="gan", architecture="mlp", conditional=True, latent_dim=100,
                        hidden=(256, 512, 1024), metric_samples=10000,
                        parzen_validation_split="train[50000:51000]"),
        data=DataConfig(name="mnist", train_split="train[:50000]", eval_split="test",
                        preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=100, num_steps=30000, log_every=100, eval_every=6000, checkpoint_every=3000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=100),
    )
