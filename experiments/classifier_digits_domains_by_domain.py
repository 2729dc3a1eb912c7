"""Domain classifier on the 8x8 digits views (StarGAN's domain accuracy, Choi et al. Sec. 5).

Command:   genjax train classifier_digits_domains_by_domain \\
               --workdir runs/classifier_digits_domains_by_domain
           then: genjax train stargan_digits --workdir runs/stargan_digits \\
                     --set model.classifier_workdir=runs/classifier_digits_domains \\
                     --set model.domain_classifier_workdir=runs/classifier_digits_domains_by_domain
           (a translation run with data.max_train_examples=N evaluated with the classifier it
           trained in memory before: --set data.max_train_examples=4N here)
Run time:  44 s wall (34 s in genjax's run, compile 6.0 s, 37 s user CPU) on 2 shared CPU
           cores (x86, jax 0.10.2, CPU backend) while other jobs ran.
Protocol:  data.name=digits_domains_by_domain: the original, inverted, rot90 and thick views
           (genjax.data.domains) of genjax's fixed stratified digits split, 5988 train / 1200
           test images, labels = the view's index in genjax.data.domains.DOMAINS (4 classes),
           pixels scaled to [0, 1] ("unit"); the classifier_digits CNN conv3x3(32)-pool-
           conv3x3(64)-pool-dense(128)-dense(4), ReLU, dropout 0.25 on the 128-d feature layer,
           Adam 1e-3, batch 100, 1000 steps (~17 epochs), seed 0: exactly the domain classifier
           stargan_digits trained in memory before it became this explicit run, so its
           domain_accuracy numbers are unchanged.
Expected:  measured (seed 0): test accuracy 1.000 (1200 / 1200 test views), test NLL 3.4e-5
           nats/example; variables SHA-256 cb533db72214..., the same as the in-memory domain
           classifier of the code before this config existed (model.classifier_steps=1000, seed 0).
           No paper anchor: it measures whether a translation reaches its target domain.
"""

from genjax.methods.classifier import ClassifierConfig
from genjax.train.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig


def get_config() -> Config:
    return Config(
        method="classifier",
        description=__doc__.splitlines()[0],
        model=ClassifierConfig(conv_features=(32, 64), dense=128, dropout_rate=0.25),
        data=DataConfig(name="digits_domains_by_domain", preprocess="unit"),
        optim=OptimConfig(name="adam", learning_rate=1e-3),
        train=TrainConfig(
            seed=0, batch_size=100, num_steps=1000, log_every=100, eval_every=500,
            checkpoint_every=500,
        ),
        eval=EvalConfig(batch_size=500, num_samples=64),
    )
