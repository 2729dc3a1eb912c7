"""WGAN with weight clipping on MNIST (Arjovsky et al. 2017, Algorithm 1, DCGAN architecture).

Command:   genjax train wgan_mnist --workdir runs/wgan_mnist --set data.manual_dir=PATH_TO_MNIST_GZ \\
               --set model.classifier_workdir=runs/classifier_mnist
Run time:  not measured here (CPU only in this session).
Protocol:  MNIST 60k train, pixels in [-1, 1]; the dcgan_mnist G and critic (the critic's output
           is an unbounded score); critic weights clipped to [-0.01, 0.01] after every update;
           n_critic = 5 critic updates per generator update, each on its own 64 real images
           (train.batch_size = 5 x 64 = 320); RMSProp 5e-5 for both, 20,000 generator updates.
           Not implemented: Algorithm 1's 100 critic updates for the first 25 generator updates
           and every 500th. Logged: discriminator/wasserstein_estimate = E f(x) - E f(G(z)).
           Evaluation as in dcgan_mnist (FD-mnist-cnn etc. on 10,000 samples vs the test set).
Expected:  not measured here. Anchor (qualitative): the critic's Wasserstein estimate falls as
           samples improve (Arjovsky et al. 2017, Fig. 3-4); no MNIST number in the paper. The
           claim is checked on digits by experiments/wgan_vs_gan.py.
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="wgan", architecture="dcgan", latent_dim=100, base_features=64,
                        num_stages=2, n_critic=5, clip_value=0.01, metric_samples=10000),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(name="rmsprop", learning_rate=5e-5),
        train=TrainConfig(
            batch_size=320, num_steps=20000, log_every=100, eval_every=5000, checkpoint_every=2500,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
