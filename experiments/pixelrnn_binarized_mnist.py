"""PixelRNN, Diagonal BiLSTM, on statically binarized MNIST (van den Oord et al. 2016b: 79.20 nats).

Command:   genjax train pixelrnn_binarized_mnist --workdir runs/pixelrnn_bmnist --set data.manual_dir=DIR
           (also --set model.architecture=pixelrnn_row for the Row LSTM, paper: 80.54 nats)
Run time:  an accelerator run: the Diagonal BiLSTM is sequential along the 55 diagonals of a
           28x28 image (skewed), so a step costs far more than a PixelCNN step; 200,000 steps of
           batch 64 (256 epochs); budget several hours to a day on one modern GPU. Not run to
           completion in this repository (no GPU was available; see README "Results").
Protocol:  Larochelle & Murray's static binarization (50,000 train / 10,000 test); the paper's
           MNIST model (Sec. 5.3, Table 4): 7 Diagonal BiLSTM layers of h=16 with residual
           connections after a 7x7 type-A conv, 1x1 output layers, Bernoulli output; Adam 1e-3
           decayed exponentially to 0.1x. Exact test -log p(x) in nats per image.
Expected:  79.20 nats (van den Oord et al. 2016b, Table 4, Diagonal BiLSTM 7 layers h=16) after
           full training.
"""

from genjax.methods.autoregressive import AutoregressiveConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig

NUM_STEPS = 200_000


def get_config() -> Config:
    return Config(
        method="autoregressive",
        description=__doc__.splitlines()[0],
        model=AutoregressiveConfig(
            architecture="pixelrnn_diagonal", likelihood="bernoulli", features=16, num_layers=7,
            output_features=64,
        ),
        data=DataConfig(name="binarized_mnist", preprocess="binary"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-3, schedule="exponential", decay_rate=0.1,
            decay_steps=NUM_STEPS, grad_clip_norm=100.0,
        ),
        train=TrainConfig(
            batch_size=64, num_steps=NUM_STEPS, log_every=200, eval_every=20_000,
            checkpoint_every=5_000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
