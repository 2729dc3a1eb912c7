"""Convolutional VAE on MNIST with dynamic binarization (an accelerator run).

Command:   genjax train vae_mnist_conv --workdir runs/vae_mnist_conv --set data.manual_dir=PATH_TO_MNIST_GZ
           (manual_dir: a folder with the four original IDX .gz files; omit it to download)
Run time:  not measured here: XLA's convolution gradients are slow on CPU (about 0.7 steps/s
           on the shared 2-core CPU under load); budget well under an hour on one modern GPU.
Protocol:  MNIST 60k/10k, grey levels binarized dynamically in training (Bernoulli(x/255)) and
           once with a fixed per-run key for the test set, as in Burda et al. (2016); conv
           encoder (32, 64 channels, stride 2) and mirrored transposed-conv Bernoulli decoder,
           50 latent dims, ELBO with one sample, Adam 1e-3, batch 100.
Expected:  not measured here. Paper anchor for
           an MLP VAE with one stochastic layer on dynamically binarized MNIST: 86.76 nats
           (Burda et al. 2016, Table 1, VAE k=1, after 3280 epochs).
"""

from genjax.methods.vae import VAEConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="vae",
        description=__doc__.splitlines()[0],
        model=VAEConfig(
            architecture="conv", latent_dim=50, conv_features=(32, 64), activation="relu",
            likelihood="bernoulli", objective="elbo", num_samples=1,
        ),
        data=DataConfig(name="mnist", preprocess="binarize_dynamic"),
        optim=OptimConfig(name="adam", learning_rate=1e-3),
        train=TrainConfig(
            batch_size=100, num_steps=60000, log_every=200, eval_every=10000,
            checkpoint_every=5000,
        ),
        eval=EvalConfig(iwae_samples=5000, iwae_batch_size=20, num_samples=64),
    )
