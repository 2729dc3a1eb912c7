"""Class-conditional Gated PixelCNN on 8-bit MNIST, 256-way softmax per pixel.

Command:   genjax train gated_pixelcnn_mnist --workdir runs/gated_pixelcnn_mnist
           (offline: --set data.manual_dir=DIR holding the four MNIST .gz files)
Run time:  an accelerator run: 12 gated layers of p=64 at 28x28, batch 64, 100,000 steps
           (107 epochs); budget about an hour or two on one modern GPU. Not run to completion in
           this repository (no GPU was available; see README "Results").
Protocol:  the 8-bit pixels 0..255 as 256-way softmax targets (no dequantization; network input
           2v/255 - 1), conditioned on the digit label (van den Oord et al. 2016c, Eq. 4);
           vertical and horizontal stacks without blind spot, gated tanh x sigmoid units, 7x7
           first layer then 3x3; Adam 1e-3 decayed exponentially to 0.1x. Exact test
           -log p(x | label) over the 10,000 test images in nats, bits/dim = nats / (784 ln 2).
Expected:  no paper anchor on MNIST (the Gated PixelCNN paper reports CIFAR-10 3.03 and ImageNet);
           8-bit MNIST likelihoods of strong autoregressive models are around 0.8-1.0 bits/dim.
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig

NUM_STEPS = 100_000


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="gated_pixelcnn", likelihood="categorical", features=64, num_layers=12,
            output_features=256, conditional=True,
        ),
        data=DataConfig(name="mnist", preprocess="integer"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-3, schedule="exponential", decay_rate=0.1,
            decay_steps=NUM_STEPS, grad_clip_norm=100.0,
        ),
        train=TrainConfig(
            batch_size=64, num_steps=NUM_STEPS, log_every=200, eval_every=10_000,
            checkpoint_every=5_000,
            # 8 steps per call, the same numbers: one allocation of the 1.7 GB of temporaries
            # per call instead of per step (benchmarks/run.py, 2-core CPU: the loop 0.513 steps/s
            # against 0.476 for one step per call; see README "Speed")
            steps_per_dispatch=8,
        ),
        eval=EvalConfig(batch_size=500, num_samples=100),
    )
