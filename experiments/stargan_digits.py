"""StarGAN on 8x8 digits: original / inverted / rot90 / thick views (quick pipeline check).

Command:   genjax train classifier_digits_domains --workdir runs/classifier_digits_domains
           genjax train classifier_digits_domains_by_domain \
               --workdir runs/classifier_digits_domains_by_domain
           genjax train stargan_digits --workdir runs/stargan_digits \
               --set model.classifier_workdir=runs/classifier_digits_domains \
               --set model.domain_classifier_workdir=runs/classifier_digits_domains_by_domain
           (without them, label_accuracy / domain_accuracy are reported as skipped with these
           commands)
Run time:  64 s wall (4000 steps at about 87 steps/s after an 8 s compile, then the
           evaluations at 1000, 2000, 3000 and 4000 steps), 89 s user + 5 s sys CPU, on 2
           shared CPU cores (x86, jax 0.10.2); the two classifier commands: 11 s and 10 s
           in the loop each.
Protocol:  genjax.data.domains views of scikit-learn's 8x8 digits (1497 train / 300 test), four
           domains; unpaired training (each critic update: 16 train images, image i in domain
           i % 4; target domains a random permutation of the sources), pixels in [-1, 1].
           Generator: 32 features, 3x3 outer convolutions, no downsampling, 1 residual block
           (a 9-pixel receptive field on 8-pixel images, as Choi et al.'s 124 pixels on 128:
           the 7x7 / one-downsampling / 3-block generator of earlier versions saw 42 pixels and
           swapped the digit, issue 18), affine instance norm, label tiled as 4 extra input
           channels; discriminator: 2 stride-2 convs (16, 32 features), adversarial 2x2 patch
           head and 4-way classification head. WGAN-GP with lambda_gp 10, lambda_cls 1,
           lambda_rec 10, n_critic 5 (batch 80 = 5 x 16), Adam 1e-4 (b1 0.5, b2 0.999),
           constant learning rate, 4000 generator steps: Choi et al.'s objective and schedule,
           term by term.
           Evaluation on the 300 test images, every one of the 12 ordered pairs of distinct
           domains (label_accuracy_<a>_to_<b>, domain_accuracy_..., pixel_l1_..., cycle_l1_...)
           and their averages over the 12 pairs and over the 6 without rot90 (..._without_rot90):
           pixel L1 vs the ground-truth view, cycle L1, label preservation (digit classifier)
           and domain accuracy (domain classifier): classifier_digits_domains and
           classifier_digits_domains_by_domain (1000 steps each on the digits views, seed 0;
           0.957 / 0.980 / 0.967 / 0.973 on the thick / original / inverted / rot90 test
           views, 1.000 for the domains).
Expected:  measured after 4000 steps (seed 0): domain accuracy 0.997 (the domain classifier
           scores 1.000 on the ground-truth views), cycle L1 0.073, pixel L1 0.212 (doing
           nothing: 0.527), D_cls accuracy on real views 1.000; label preservation 0.428 over
           the 12 pairs and 0.588 over the 6 without rot90 (the digit classifier scores 0.969
           on the ground-truth views): original <-> inverted keep the digit (0.933 / 0.960),
           inverted -> thick 0.867, thick -> inverted 0.703, but original <-> thick replace it
           (0.027 / 0.040: the generator's thick view of an original digit is a halo around
           dimmed strokes, which looks like the thick view of another digit), and the rot90
           pairs are at 0.150-0.457. These hold for seed 0: the seed picks the basin. Over
           seeds 0-21 at 2000 steps, 6 runs keep the inversion pairs as seed 0 does, 8 keep
           original <-> thick and lose the inversion, 8 lose every pair; mean 0.366 over the 6
           pairs without rot90 (benchmarks/stargan_basins.py --seeds 0-21). Issue 18: the
           target is 0.80 over the 6 pairs without rot90; no single seed reaches it, but 8
           restarts (seeds 0-7) chosen pair by pair by a two-sample test on training images
           (no labels, no pairs), distilled into one generator and trained on with this
           objective, keep 0.877 (12 pairs: 0.589; benchmarks/stargan_basins.py --init
           selected). Trained paired (L1 to the ground truth), the same generator keeps
           0.934 of those pairs and 0.764 of the rot90 ones. README "Image-to-image
           translation" has the per-pair table and the changes measured. No paper anchor: Choi
           et al. report no numbers for synthetic domains; this config checks the pipeline end
           to end.
"""

from genjax.methods.stargan import StarGANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="stargan",
        description=__doc__.splitlines()[0],
        model=StarGANConfig(
            domains=("original", "inverted", "rot90", "thick"), base_features=32,
            num_downsamples=0, num_blocks=1, generator_outer_kernel=3,
            discriminator_features=16, discriminator_layers=2,
            lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, n_critic=5,
        ),
        data=DataConfig(name="digits", preprocess="symmetric"),
        optim=OptimConfig(name="adam", learning_rate=1e-4, b1=0.5, b2=0.999),
        train=TrainConfig(
            batch_size=80, num_steps=4000, log_every=100, eval_every=1000, checkpoint_every=1000,
        ),
        eval=EvalConfig(batch_size=300),
    )
