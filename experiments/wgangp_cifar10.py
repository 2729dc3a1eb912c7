"""WGAN-GP on CIFAR-10 with a DCGAN-style generator and a layer-normalized critic.

Command:   genjax train wgangp_cifar10 --workdir runs/wgangp_cifar10
           (cifar10 comes through TFDS's own builder: preparing it needs
           pip install -e ".[tensorflow]" and network once; see README "Datasets")
Run time:  not measured here (CIFAR-10 is not available on this machine; CPU only).
Protocol:  CIFAR-10 50k train, pixels in [-1, 1]; G z ~ N(0, I_128) -> 4x4x512 -> 8x8x256 ->
           16x16x128 -> 32x32x3 (transposed convs, batch norm, ReLU, tanh); critic 4x4 stride-2
           convs 128-256-512 with layer norm (Gulrajani et al. 2017, Sec. 4, in place of batch
           norm), lambda = 10, n_critic = 5 with 64 real images each (train.batch_size = 320),
           Adam 1e-4 b1 0.5 b2 0.9 at a constant rate (the paper decays it linearly to 0),
           100,000 generator updates (the paper: 200,000). Evaluation: FD/KD/precision-recall in
           a genjax classifier's features if one is configured (there is no classifier_cifar10
           config yet; the result then says the metrics were skipped).
Expected:  not measured here. Anchor: Inception score 7.86 +- 0.07 for unsupervised WGAN-GP
           with a ResNet (Gulrajani et al. 2017, Table 3), not this DCGAN-style network;
           genjax computes no Inception score and no Inception FID (no Inception weights).
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="wgan_gp", architecture="dcgan", latent_dim=128, base_features=128,
                        num_stages=3, discriminator_norm="layer", n_critic=5, gp_weight=10.0,
                        metric_samples=10000),
        data=DataConfig(name="cifar10", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=1e-4, b1=0.5, b2=0.9),
        train=TrainConfig(
            batch_size=320, num_steps=100000, log_every=100, eval_every=10000,
            checkpoint_every=5000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
