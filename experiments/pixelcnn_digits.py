"""PixelCNN on scikit-learn's 8x8 digits, dynamically binarized: the quick end-to-end check.

Command:   genjax train pixelcnn_digits --workdir runs/pixelcnn_digits
Run time:  TIME_PLACEHOLDER
Protocol:  pixels (0..16 scaled to 0..255) dynamically binarized in training (Bernoulli(v/255),
           fresh per step) and binarized once with a fixed per-run key for evaluation (the
           vae_digits protocol, so the two are comparable); PixelCNN (7x7 type-A conv, 4 residual
           blocks of h=32, 1x1 head of 128), Bernoulli output; Adam 1e-3, batch 100. Exact test
           -log p(x) in nats per 64-pixel image (bits/dim = nats / (64 ln 2)).
Expected:  RESULT_PLACEHOLDER
           (no paper anchor; vae_digits, same protocol, reaches about 24-25 nats).
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="pixelcnn", likelihood="bernoulli", features=32, num_layers=4,
            output_features=128,
        ),
        data=DataConfig(name="digits", preprocess="binarize_dynamic"),
        optim=OptimConfig(name="adam", learning_rate=1e-3),
        train=TrainConfig(
            batch_size=100, num_steps=3000, log_every=100, eval_every=1000, checkpoint_every=1000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
