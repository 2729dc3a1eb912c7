"""DCGAN on scikit-learn's 8x8 digits: the quick end-to-end check of the adversarial pipeline.

Command:   genjax train dcgan_digits --workdir runs/dcgan_digits \\
               --set model.classifier_workdir=runs/classifier_digits
           (the classifier run: genjax train classifier_digits --workdir runs/classifier_digits;
           without it, FD/KD/precision/recall are skipped and the result says so)
Run time:  154 s wall (120 s CPU user), evaluation included, on 2 shared CPU cores (x86,
           jax 0.10.2, CPU backend, other jobs running), measured with this config.
Protocol:  pixels scaled to [-1, 1] ("symmetric"); DCGAN (Radford et al. 2016) with 2 stages:
           G z ~ N(0, I_32) -> 2x2x64 -> 4x4x32 -> 8x8x1 (transposed convs, batch norm, ReLU,
           tanh); D strided convs 32-64, leaky ReLU 0.2, batch norm on every conv
           but the first.
           Non-saturating G loss, Adam 2e-4 b1 0.5, batch 64, 5000 steps (~217 epochs).
           Evaluation: 10,000 samples vs the 300 test images in the features of the
           classifier_digits CNN (FD-digits-cnn, KD-digits-cnn over 100 subsets of 300, improved
           precision/recall k=3).
Expected:  measured (seed 0, classifier_digits checkpoint sha256 49f3711c...): FD-digits-cnn 4.50,
           KD 0.057 +- 0.124, precision 0.617, recall 0.867. Floor in the same features (the
           1497 train images as "samples" vs the 300 test images): FD 1.68, precision 0.905,
           recall 0.913. No paper anchor (this dataset checks the pipeline); the DCGAN paper reports
           no sample-quality number for digits.
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="gan", architecture="dcgan", latent_dim=32, base_features=32,
                        num_stages=2, metric_samples=10000),
        data=DataConfig(name="digits", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=64, num_steps=5000, log_every=100, eval_every=2500, checkpoint_every=2500,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
