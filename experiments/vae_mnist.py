"""VAE on MNIST with dynamic binarization, Burda et al.'s one-stochastic-layer architecture.

Command:   genjax train vae_mnist --workdir runs/vae_mnist --set data.manual_dir=PATH_TO_MNIST_GZ
           (manual_dir: a folder with the four original IDX .gz files; omit it to download)
Run time:  17.0 min wall (960 s user CPU) on a shared 2-core CPU while other jobs ran, jax 0.10.2,
           with --set eval.max_examples=2000 (the K=5000 evaluation of 2000 test images
           included; its cost grows linearly with the number of test images).
Protocol:  MNIST 60k train / 10k test, grey levels binarized dynamically in training
           (Bernoulli(x/255), fresh each step) and once with a fixed per-run key for the test
           set, as in Burda et al. (2016); MLP encoder and decoder 784-200-200-50 with tanh
           (Burda et al. 2016, Sec. 5, one stochastic layer), Bernoulli decoder, ELBO with one
           sample, Adam 1e-3 (eps 1e-4), batch 100, 100 epochs (60,000 steps). Test -log p(x)
           by the IWAE estimate with K=5000 samples per example, nats per image.
Expected:  measured (seed 0, the first 2000 test images): test -log p(x) = 90.27 nats (IWAE,
           K=5000), -ELBO 96.00 nats, after 100 of the paper's 3280 epochs. Anchor: 86.76 nats
           (Burda et al. 2016, Table 1, VAE k=1, one stochastic layer, dynamically binarized
           MNIST, after 3280 epochs with batch 20).
"""

from genjax.methods.vae import VAEConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="vae",
        description=__doc__.splitlines()[0],
        model=VAEConfig(
            architecture="mlp", latent_dim=50, hidden=(200, 200), activation="tanh",
            likelihood="bernoulli", objective="elbo", num_samples=1,
        ),
        data=DataConfig(name="mnist", preprocess="binarize_dynamic"),
        optim=OptimConfig(name="adam", learning_rate=1e-3, eps=1e-4),
        train=TrainConfig(
            batch_size=100, num_steps=60000, log_every=500, eval_every=60000,
            checkpoint_every=5000,
        ),
        eval=EvalConfig(iwae_samples=5000, iwae_batch_size=20, num_samples=64),
    )
