"""genjax: the classic deep generative models, reimplemented functionally in JAX.

Layers (each imports only from the layers above it):

1. ``genjax.losses``  - pure loss functions on arrays.
2. ``genjax.models``  - Flax Linen architectures.
3. ``genjax.data``    - datasets by name through tensorflow-datasets.
4. ``genjax.train``   - train state, jitted data-parallel step, checkpoints, loop.
5. ``genjax.eval``    - metrics and pictures for any model.
6. ``genjax.methods``  - one place per method (found by the engine through the package's
   ``genjax.methods`` entry point); ``genjax.classical`` holds the EM / closed-form algorithms
   on arrays that the classical methods fit with.
"""

__version__ = "0.1.0"
