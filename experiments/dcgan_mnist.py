"""DCGAN on MNIST (Radford et al. 2016 architecture, non-saturating GAN loss).

Command:   genjax train dcgan_mnist --workdir runs/dcgan_mnist --set data.manual_dir=PATH_TO_MNIST_GZ \\
               --set model.classifier_workdir=runs/classifier_mnist
           (manual_dir: the four original IDX .gz files; classifier: genjax train classifier_mnist)
Run time:  not measured here (CPU only in this session; conv gradients are slow on CPU).
Protocol:  MNIST 60k train, pixels in [-1, 1]; G z ~ N(0, I_100) -> 7x7x128 -> 14x14x64 ->
           28x28x1 (transposed 4x4 stride-2 convs, batch norm, ReLU, tanh); D 4x4 stride-2 convs
           64-128 with leaky ReLU 0.2 and batch norm on every conv but
           the first, one logit. Adam 2e-4,
           b1 0.5, batch 128, 20,000 steps (~43 epochs). Batch norm under data parallelism uses the
           global batch (the step is jitted over it). Evaluation: 10,000 samples vs the 10,000 test
           images in the classifier_mnist features: FD-mnist-cnn, KD-mnist-cnn (100 subsets of
           1000), improved precision/recall (k=3).
Expected:  not measured here. No paper number for this protocol: Radford et al. give no MNIST
           sample metric; the Goodfellow et al. (2014) anchor for MNIST GANs is a Parzen window
           log-likelihood of 225 +- 2 nats (Table 1, MLP GAN), a different metric. Floor of
           FD-mnist-cnn (train vs test images, 2-epoch classifier): 1.03 (classifier_mnist header).
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="gan", architecture="dcgan", latent_dim=100, base_features=64,
                        num_stages=2, metric_samples=10000),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=128, num_steps=20000, log_every=100, eval_every=5000, checkpoint_every=2500,
            # 8 steps per call, the same numbers (benchmarks/run.py, 2-core CPU: the loop 9.03
            # steps/s against 8.28 for one step per call; see README "Speed")
            steps_per_dispatch=8,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
