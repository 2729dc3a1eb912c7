"""PixelCNN on statically binarized MNIST (van den Oord et al. 2016b, Table 4: 81.30 nats).

Command:   genjax train pixelcnn_binarized_mnist --workdir runs/pixelcnn_bmnist --set data.manual_dir=DIR
           (DIR holds binarized_mnist_{train,valid,test}.amat; see README "Datasets")
Run time:  an accelerator run: 15 residual blocks of h=64 at 28x28, batch 64, 200,000 steps
           (256 epochs of the 50,000 training images); budget a few hours on one modern GPU. Not
           run to completion in this repository (see README "Results"). Measured on 2 shared
           CPU cores (AMD EPYC, jax 0.10.2, 2026-12-04, 8 steps per call): about 1.0 steps/s
           (1.1 with --cpu-devices 2), i.e. ~2.3 days for the 200,000 steps there.
Protocol:  Larochelle & Murray's static binarization (50,000 train / 10,000 test images), Bernoulli
           output per pixel; PixelCNN: 7x7 type-A masked conv, 15 residual blocks (1x1 h,
           3x3 type-B, 1x1 2h), two 1x1 type-B ReLU layers of 256, sigmoid; Adam 1e-3 with an
           exponential decay to 0.1x over the run. Exact test -log p(x) in nats per image (sum of
           784 Bernoulli terms), bits/dim = nats / (784 ln 2).
Expected:  81.30 nats (van den Oord et al. 2016b, Table 4) after full training. The paper does not
           give its MNIST PixelCNN's depth and width; this is the CIFAR design of its Table 1 scaled
           down (h=64 instead of 128).
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig

NUM_STEPS = 200_000


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="pixelcnn", likelihood="bernoulli", features=64, num_layers=15,
            output_features=256,
        ),
        data=DataConfig(name="binarized_mnist", preprocess="binary"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-3, schedule="exponential", decay_rate=0.1,
            decay_steps=NUM_STEPS, grad_clip_norm=100.0,
        ),
        train=TrainConfig(
            batch_size=64, num_steps=NUM_STEPS, log_every=200, eval_every=20_000,
            checkpoint_every=5_000,
            # 8 steps per call: the same numbers. XLA:CPU allocates a call's 1.7 GB of
            # temporaries afresh and the kernel zero-fills every page on first touch: 427,673
            # page faults per step at 1 step per call, 53,456 at 8 (2-core AMD EPYC, jax
            # 0.10.2: 0.72 -> 1.05 steps/s, sys time 0.8 -> 0.12 s per step).
            steps_per_dispatch=8,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
