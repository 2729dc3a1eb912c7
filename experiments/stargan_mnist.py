"""StarGAN on MNIST: original / inverted / rot90 / thick views (genjax.data.domains).

Command:   genjax train classifier_mnist_domains --workdir runs/classifier_mnist_domains \
               --set data.manual_dir=DIR
           genjax train classifier_mnist_domains_by_domain \
               --workdir runs/classifier_mnist_domains_by_domain --set data.manual_dir=DIR
           genjax train stargan_mnist --workdir runs/stargan_mnist --set data.manual_dir=DIR \
               --set model.classifier_workdir=runs/classifier_mnist_domains \
               --set model.domain_classifier_workdir=runs/classifier_mnist_domains_by_domain
           (DIR holds the four MNIST IDX .gz files; see README "Datasets"; without the
           classifiers, label_accuracy / domain_accuracy are reported as skipped)
Run time:  measured (`python benchmarks/bench_translation.py --configs cyclegan_mnist stargan_mnist
           --set data.manual_dir=DIR --steps 10 --warmup 2`, 2 shared CPU cores, jax 0.10.2):
           1.46 training steps/s, so the 20,000 steps take about 3.8 h there (conv weight
           gradients are slow on this CPU); not trained here. An accelerator run.
Protocol:  MNIST 60k train / 10k test, four domains; unpaired training (each critic update:
           16 train images, image i in domain i % 4; target domains a random permutation of
           the sources, as the reference code), pixels in [-1, 1]. Generator as Choi et al.
           (2018), Table 4, but narrower: 32 features, two downsamplings (28 -> 7), 6 residual
           blocks, affine instance norm, the label tiled as 4 extra input channels;
           discriminator: 2 stride-2 convs (32, 64 features), leaky ReLU 0.01, adversarial
           7x7 patch head and 4-way classification head. WGAN-GP: lambda_gp 10, lambda_cls 1,
           lambda_rec 10, n_critic 5 (batch 80 = 5 x 16), Adam 1e-4 (b1 0.5, b2 0.999),
           constant for 10000 steps then linearly to 0 (optim.schedule="linear", as the paper's
           second half), 20000 generator steps. Evaluation on the 10k test images, all 12 ordered pairs of
           distinct domains: pixel L1 against the ground-truth view, cycle L1, label
           preservation (digit classifier) and domain accuracy (domain classifier; Choi et al.
           Sec. 5's protocol): classifier_mnist_domains and classifier_mnist_domains_by_domain
           (2000 steps each on the MNIST views).
Expected:  not measured here. The paper reports no number for synthetic domains; the reference
           points are the identity baseline and the classifiers' accuracies on the
           ground-truth views, printed with the results. Check pixel_l1_<a>_to_<b> against its
           identity baseline before trusting label or domain accuracy: the 9-pixel generator of
           stargan_digits run on MNIST (--set model.num_downsamples=0 model.num_blocks=1
           model.generator_outer_kernel=3 optim.learning_rate=2e-4 train.num_steps=12000
           optim.decay_steps=6000; 26 min on 2 shared CPU cores) kept the digit in 0.916 of
           the 6 pairs without rot90 with domain accuracy 0.881, yet drew original -> thick as
           a dark digit on grey (pixel L1 0.424, doing nothing 0.092), which the domain
           classifier calls thick (README "CycleGAN and StarGAN", issue 18).
"""

from genjax.methods.stargan import StarGANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="stargan",
        description=__doc__.splitlines()[0],
        model=StarGANConfig(
            domains=("original", "inverted", "rot90", "thick"), base_features=32,
            num_downsamples=2, num_blocks=6, discriminator_features=32, discriminator_layers=2,
            lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, n_critic=5,
        ),
        data=DataConfig(name="mnist", preprocess="symmetric"),
        optim=OptimConfig(
            name="adam", learning_rate=1e-4, b1=0.5, b2=0.999, schedule="linear",
            decay_steps=10000,
        ),
        train=TrainConfig(
            batch_size=80, num_steps=20000, log_every=200, eval_every=5000,
            checkpoint_every=5000,
        ),
        eval=EvalConfig(batch_size=500),
    )
