"""WGAN-GP on MNIST (Gulrajani et al. 2017, Algorithm 1): critic without batch norm.

Command:   genjax train wgangp_mnist --workdir runs/wgangp_mnist --set data.manual_dir=PATH_TO_MNIST_GZ \\
               --set model.classifier_workdir=runs/classifier_mnist
Run time:  not measured here (CPU only in this session; the penalty needs a double backward pass).
Protocol:  MNIST 60k train, pixels in [-1, 1]; the dcgan_mnist G (batch norm) and a critic of
           4x4 stride-2 convs 64-128 with no normalization (the penalty is per example, batch
           norm would mix examples: Sec. 4 of the paper); lambda = 10 on
           E[(||grad f(x_hat)||_2 - 1)^2] at uniform interpolates, the norm per example over all
           pixels; n_critic = 5, 50 real images per critic update (train.batch_size = 250); Adam
           1e-4, b1 0.5, b2 0.9 (the paper's MNIST settings), 20,000 generator updates (the
           paper runs 200,000). Evaluation as in dcgan_mnist.
Expected:  not measured here. No MNIST number in the paper (its MNIST result is qualitative,
           samples in the appendix); its quantitative anchor is CIFAR-10, see wgangp_cifar10.
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="wgan_gp", architecture="dcgan", latent_dim=128, base_features=64,
                        num_stages=2, discriminator_norm="none", n_critic=5, gp_weight=10.0,
                        metric_samples=10000),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=1e-4, b1=0.5, b2=0.9),
        train=TrainConfig(
            batch_size=250, num_steps=20000, log_every=100, eval_every=5000, checkpoint_every=2500,
            # 8 steps per call, the same numbers (benchmarks/run.py, 2-core CPU: the loop 2.28
            # steps/s against 2.15 for one step per call; see README "Speed")
            steps_per_dispatch=8,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
