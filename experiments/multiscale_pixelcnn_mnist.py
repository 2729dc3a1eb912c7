"""Parallel multiscale PixelCNN (Reed et al. 2017) on statically binarized MNIST.

Command:   genjax train multiscale_pixelcnn_mnist --workdir runs/multiscale_bmnist --set data.manual_dir=DIR
Run time:  an accelerator run: 100,000 steps of batch 64 (128 epochs); budget about an hour on one
           modern GPU. Not run to completion in this repository (see README "Results").
Protocol:  Larochelle & Murray's static binarization (50,000 train / 10,000 test); a Gated PixelCNN
           base model at 7x7 (10 layers of 64), then S = 2 scales of 2x upsampling, each filling
           pixel groups 2, 3, 4 in parallel with a shallow conv network (Reed et al. 2017, Sec. 3),
           Bernoulli outputs; sampling takes 7*7 + 3*2 = 55 sequential network evaluations
           instead of 784. Exact test -log p(x) = base term + every group's term, nats per image.
Expected:  no paper anchor on MNIST (Reed et al. report CUB, MS-COCO and ImageNet); compare with
           pixelcnn_binarized_mnist (81.30 nats for PixelCNN): the multiscale factorization trades
           some likelihood for O(log N) sampling.
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig

NUM_STEPS = 100_000


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="multiscale", likelihood="bernoulli", num_scales=2, base_features=64,
            num_layers=10, features=64, num_blocks=3, output_features=128,
        ),
        data=DataConfig(name="binarized_mnist", preprocess="binary"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-3, schedule="exponential", decay_rate=0.1,
            decay_steps=NUM_STEPS, grad_clip_norm=100.0,
        ),
        train=TrainConfig(
            batch_size=64, num_steps=NUM_STEPS, log_every=200, eval_every=10_000,
            checkpoint_every=5_000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
