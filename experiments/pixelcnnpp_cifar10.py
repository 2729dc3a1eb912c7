"""PixelCNN++ on CIFAR-10 (Salimans et al. 2017: 2.92 bits/dim; Gated PixelCNN 3.03).

Command:   genjax train pixelcnnpp_cifar10 --workdir runs/pixelcnnpp_cifar10
           (offline: --set data.manual_dir=DIR holding cifar-10-python.tar.gz)
Run time:  a long multi-accelerator run, not run here. The paper's model (5 resnet blocks per
           stage, 160 feature maps, 10 logistic components, dropout 0.5) trained for about
           5 days on 8 GPUs to reach 2.92; this config's 600,000 steps of batch 64 (768 epochs) is
           the same order of work. Evaluate any checkpoint with `genjax evaluate --workdir ...`.
Protocol:  8-bit CIFAR-10, discretized logistic mixture likelihood with the linear channel
           coupling (Salimans et al. 2017, Eq. 2-3), down/up-sampling with shortcut connections,
           dropout 0.5, weight normalization; Adam 1e-3 with per-step exponential decay 0.999995;
           Polyak averaging of the parameters with decay 0.9995 (the paper's code), which
           evaluation, samples and pictures use.
           Exact test -log p(x) over the 10,000 test images, bits/dim = nats / (3072 ln 2) (no
           dequantization: a probability of the discrete data).
Expected:  2.92 bits/dim (Salimans et al. 2017, Table 1) after full training; 3.03 for the Gated
           PixelCNN (van den Oord et al. 2016c, Table 1).
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="pixelcnnpp", likelihood="logistic_mixture", features=160, num_layers=5,
            num_mixtures=10, dropout_rate=0.5, weight_norm=True,
        ),
        data=DataConfig(name="cifar10", preprocess="integer"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-3, b1=0.95, b2=0.9995, schedule="exponential",
            decay_rate=0.999995, decay_steps=1,
        ),
        train=TrainConfig(
            batch_size=64, num_steps=600_000, log_every=500, eval_every=50_000,
            checkpoint_every=5_000, ema_decay=0.9995,
        ),
        eval=EvalConfig(batch_size=250, num_samples=64),
    )
