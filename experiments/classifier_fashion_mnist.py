"""Feature classifier on Fashion-MNIST (for FD-fashion_mnist-cnn, KD, precision/recall, accuracy).

Command:   genjax train classifier_fashion_mnist --workdir runs/classifier_fashion_mnist \\
               --set data.manual_dir=PATH_TO_FASHION_MNIST_GZ
           (manual_dir: a folder with the four original IDX .gz files; omit it to download)
Run time:  not measured yet; about 5x the per-epoch time of classifier_mnist (same network and
           data size, 10 epochs instead of 5 at the same batch size).
Protocol:  Fashion-MNIST 60k/10k, pixels scaled to [0, 1] ("unit"); the network of
           classifier_mnist (conv3x3(32)-pool-conv3x3(64)-pool-dense(128)-dense(10), ReLU,
           dropout 0.5 on the features), Adam 1e-3 with a cosine decay, batch 100, 6000 steps
           (10 epochs).
Expected:  test accuracy about 0.91-0.92 (not measured yet; for scale, Xiao et al. 2017 list
           about 0.91 for small two-layer CNNs on their benchmark page). No paper anchor for the
           FD numbers: compare them only when computed with the same checkpoint.
"""

from genjax.methods.classifier import ClassifierConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="classifier",
        description=__doc__.splitlines()[0],
        model=ClassifierConfig(conv_features=(32, 64), dense=128, dropout_rate=0.5),
        data=DataConfig(name="fashion_mnist", preprocess="unit"),
        optim=OptimConfig(name="adam", learning_rate=1e-3, schedule="cosine"),
        train=TrainConfig(
            batch_size=100, num_steps=6000, log_every=100, eval_every=1200, checkpoint_every=1200,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
