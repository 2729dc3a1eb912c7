"""Real NVP on CIFAR-10 (Dinh et al. 2017, Table 1: 3.49 bits/dim): a long accelerator run.

Command:   genjax train realnvp_cifar10 --workdir runs/realnvp_cifar10
Run time:  not run on CPU. Budget: the paper's setting is 8 residual blocks of 64 features, 3
           scales (32 -> 16 -> 8), batch 64, ADAM 1e-3; reaching ~3.5 bits/dim takes on the
           order of hundreds of epochs, i.e. days on one modern GPU (500,000 steps here = 640
           epochs). Evaluate at any checkpoint with `genjax evaluate --workdir ...`.
Protocol:  uniform dequantization of the 8-bit pixels to [0, 1), logit transform alpha = 0.05
           (Jacobian included), batch norm after each coupling (running averages in evaluation),
           weight-normalized ResNet s/t; test NLL in bits/dim of the 8-bit data (+ D log 256),
           one dequantization draw per example, the 10,000-image test split. (The paper also
           uses horizontal flips and L2 weight decay 5e-5; neither is applied here.)
Expected:  3.49 bits/dim (Dinh et al. 2017, Table 1) after full training; not measured here.
"""

from genjax.methods.flow import RealNVPConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="realnvp",
        description=__doc__.splitlines()[0],
        model=RealNVPConfig(
            architecture="image", num_scales=3, features=64, num_blocks=8, norm="batchnorm",
            logit_alpha=0.05,
        ),
        data=DataConfig(name="cifar10", preprocess="dequantize"),
        optim=OptimConfig(name="adam", learning_rate=1e-3, grad_clip_norm=100.0),
        train=TrainConfig(
            batch_size=64, num_steps=500000, log_every=100, eval_every=10000,
            checkpoint_every=2000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
