"""genjax: the classic deep generative models, reimplemented functionally in JAX.

Layers (each imports only from the layers above it):

1. ``genjax.losses``  - pure loss functions on arrays.
2. ``genjax.models``  - Flax Linen architectures.
3. ``genjax.data``    - datasets by name through tensorflow-datasets.
4. ``genjax.train``   - train state, jitted data-parallel step, checkpoints, loop.
5. ``genjax.eval``    - metrics and pictures for any model.
6. ``genjax.methods`` / ``genjax.classical`` - one place per method.
"""

__version__ = "0.1.0"
