"""BiGAN on permutation-invariant MNIST (Donahue et al. 2017): G, encoder E, and D on (x, z).

Command:   genjax train bigan_mnist --workdir runs/bigan_mnist --set data.manual_dir=PATH_TO_MNIST_GZ
Run time:  measured on 2 shared CPU cores (x86, jax 0.10.2): 8.3-9.2 steps/s, so the 100,000 steps
           take about 3 h there; the measured run below covered the first 25,000 steps in
           46.4 min wall (stopped by SIGINT at 10,257 and resumed), five evaluations included.
Protocol:  MNIST 60k train, pixels in [-1, 1], fully connected networks (permutation invariant):
           G z ~ N(0, I_50) -> 1024-1024 ReLU -> 784 tanh; E 784 -> 1024-1024 leaky ReLU -> 50;
           D joins x and z paths of 1024 units, then 1024 -> 1 logit. D: minimax loss on
           (x, E(x)) vs (G(z), z); G and E: the same with the pairs swapped. Adam 2e-4 b1 0.5,
           batch 128, 100,000 steps (~213 epochs; the paper trains 400 epochs with weight decay and
           a learning-rate decay in the second half, not reproduced here). Evaluation: 1-NN accuracy
           (Euclidean) of the 10,000 test images in encoder space E(x), the 60,000 training images
           as the labelled reference (nn_accuracy).
Expected:  measured (seed 0, `--set train.eval_every=5000 --set train.num_steps=25000`: the
           config's first 25,000 steps = 53 epochs; the learning rate is constant): 1-NN accuracy
           0.9082 / 0.9351 / 0.9434 / 0.9464 / 0.9478 at steps 5k / 10k / 15k / 20k / 25k
           (10,000 test images, 60,000 training images as reference), still rising slowly. The
           full 100,000 steps: not run here. For scale: 1-NN on the raw pixels, same protocol:
           0.9691 (measured with genjax.eval.nearest_neighbor_accuracy). Anchor: 1-NN accuracy
           97.39 % (Donahue et al. 2017, Table 1, BiGAN on permutation-invariant MNIST, 400
           epochs with weight decay and a learning-rate decay).
"""

from genjax.methods.gan_config import GANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="gan",
        description=__doc__.splitlines()[0],
        model=GANConfig(variant="bigan", architecture="mlp", latent_dim=50, hidden=(1024, 1024),
                        metric_samples=10000),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=2e-4, b1=0.5),
        train=TrainConfig(
            batch_size=128, num_steps=100000, log_every=100, eval_every=10000,
            checkpoint_every=5000,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
