"""CycleGAN on TFDS cycle_gan/horse2zebra: horses (trainA) <-> zebras (trainB), unpaired.

Command:   genjax train cyclegan_horse2zebra --workdir runs/cyclegan_horse2zebra
           (needs cycle_gan/horse2zebra prepared in array_record format under data.data_dir;
           see README "Datasets")
Run time:  not run here: needs the TFDS data and an accelerator. TFDS declares the cycle_gan
           image feature without a fixed size ((None, None, 3); every image is 256x256x3): the
           reader takes the first image's size and checks every other image against it.
Protocol:  Zhu et al. (2017) Sec. 4 and appendix 7.1-7.2 as in the reference code: domain X =
           split trainA (1067 horse images), domain Y = split trainB (1334 zebra images) of the
           same dataset, 256x256x3, pixels in [-1, 1], no cropping or flipping augmentation
           (the reference resizes to 286 and randomly crops 256 and flips: not implemented).
           Unpaired: each step takes the engine's next trainA image in a shuffled epoch order
           and one trainB image drawn uniformly with replacement, a pure function of (seed, step)
           (as the reference's unaligned dataset). ResNet generators with 9 residual blocks (64
           features, two stride-2 downsamplings, instance norm, reflection padding), 70x70
           PatchGAN discriminators (64 features, num_layers=3), LSGAN, lambda_cyc 10, identity
           0.5 * lambda_cyc, history pool 50, Adam 2e-4 (b1 0.5), batch 1. Length: 200
           reference epochs of max(1067, 1334) = 1334 iterations = 266800 steps. The paper
           keeps the rate for 100 epochs and decays it linearly to 0 over the next 100
           (optim.schedule="linear", decay_steps = 100 epochs).
           Evaluation: testA (120 images) and testB (140 images); no ground-truth pairs, so
           cycle_l1_a = |F(G(a)) - a| and cycle_l1_b = |G(F(b)) - b| in [0, 1] pixel units,
           translation pictures (input, translation, reconstruction), pixel L1 and label
           accuracy reported as skipped.
Expected:  qualitative only, not measured here: horses striped as zebras and zebras as horses,
           background mostly kept (Zhu et al. Fig. 1 and 13). The paper's numbers (AMT
           perceptual studies and FCN scores) are for Cityscapes labels <-> photos and maps <->
           aerial photos, not horse2zebra.
"""

from genjax.methods.cyclegan import CycleGANConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig

DATASET = "tfds:cycle_gan/horse2zebra"
STEPS_PER_REFERENCE_EPOCH = 1334  # max(|trainA|, |trainB|) at batch 1


def get_config() -> Config:
    return Config(
        method="cyclegan",
        description=__doc__.splitlines()[0],
        model=CycleGANConfig(
            domains=(), domain_b_dataset=DATASET, domain_b_split="trainB",
            domain_b_eval_split="testB",
            base_features=64, num_downsamples=2, num_blocks=9, discriminator_features=64,
            discriminator_layers=3, adversarial_loss="least_squares", lambda_cyc=10.0,
            lambda_identity=0.5, pool_size=50,
        ),
        data=DataConfig(name=DATASET, train_split="trainA", eval_split="testA",
                        preprocess="symmetric"),
        optim=OptimConfig(
            name="adam", learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear",
            decay_steps=100 * STEPS_PER_REFERENCE_EPOCH,
        ),
        train=TrainConfig(
            batch_size=1, num_steps=200 * STEPS_PER_REFERENCE_EPOCH, log_every=100,
            eval_every=10 * STEPS_PER_REFERENCE_EPOCH,
            checkpoint_every=STEPS_PER_REFERENCE_EPOCH,
        ),
        eval=EvalConfig(batch_size=20),
    )
