"""CycleGAN on MNIST: original <-> thickened-stroke views (genjax.data.domains).

Command:   genjax train classifier_mnist_domains --workdir runs/classifier_mnist_domains \
               --set data.manual_dir=DIR
           genjax train cyclegan_mnist --workdir runs/cyclegan_mnist --set data.manual_dir=DIR \
               --set model.classifier_workdir=runs/classifier_mnist_domains
           (DIR holds the four MNIST IDX .gz files; see README "Datasets"; without the
           classifier, label_accuracy is reported as skipped with these commands)
Run time:  measured (`python benchmarks/bench_translation.py --configs cyclegan_mnist stargan_mnist
           --set data.manual_dir=DIR --steps 10 --warmup 2`, 2 shared CPU cores, jax 0.10.2):
           0.85 training steps/s, so the 20,000 steps take about 6.5 h there (conv weight
           gradients are slow on this CPU); not trained here. An accelerator run.
Protocol:  MNIST 60k train / 10k test, X = original, Y = strokes thickened by a 3x3-cross grey
           dilation; unpaired training (each step: 16 train images as X and 16 *other* train
           images as Y, disjoint parts of the shuffled batch), pixels in [-1, 1]. ResNet
           generators as Zhu et al. (2017) for small images but narrower: 32 features, two
           downsamplings (28 -> 7), 6 residual blocks, instance norm, reflection padding;
           PatchGAN discriminators (32 features, num_layers=2: 5x5 scores of 34x34 patches),
           LSGAN, lambda_cyc 10, identity 0.5 * lambda_cyc, history pools of 50 (one per
           batch position, model.pool_groups=0), Adam 2e-4
           (b1 0.5), constant for 10000 steps then linearly to 0 (optim.schedule="linear", as the
           paper's second 100 epochs), 20000 steps (about 11 epochs of each domain).
           Evaluation on the 10k test images in both domains (pairs kept): pixel L1 against
           the ground-truth view, cycle L1, label preservation by the digit classifier
           classifier_mnist_domains (2000 steps on mnist_domains).
Expected:  not measured here. The paper reports no number for synthetic domains; the reference
           points are the identity baseline (pixel_l1_..._identity_baseline, printed with the
           results) and the classifier's accuracy on the ground-truth views. On the 8x8 digits
           (cyclegan_digits) the translations had the right style but did not keep the digit
           (label accuracy below chance): check label_accuracy_* before trusting pixel L1.
"""

from genjax.methods.cyclegan import CycleGANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="cyclegan",
        description=__doc__.splitlines()[0],
        model=CycleGANConfig(
            domains=("original", "thick"), base_features=32, num_downsamples=2, num_blocks=6,
            discriminator_features=32, discriminator_layers=2,
            adversarial_loss="least_squares", lambda_cyc=10.0, lambda_identity=0.5,
            pool_size=50,
        ),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(
            name="adam", learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear",
            decay_steps=10000,
        ),
        train=TrainConfig(
            batch_size=32, num_steps=20000, log_every=200, eval_every=5000,
            checkpoint_every=5000,
            # 8 steps per call, the same numbers (benchmarks/run.py, 2-core CPU: the loop 1.89
            # steps/s against 1.67 for one step per call; see README "Speed")
            steps_per_dispatch=8,
        ),
        eval=EvalConfig(batch_size=500),
    )
