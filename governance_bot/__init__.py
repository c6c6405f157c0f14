"""governance-bot: keeps the official social media and staff-learner channels of schools safe."""

import os

__version__ = "0.1.0"

# The service's own numpy work is small matrix products (a batch's sentence embeddings against the
# rule pack's exemplars). OpenBLAS's default, one thread per core, makes its idle threads spin
# after every product: at 50 items/s that cost a third of the CPU (bench/RESULTS-load.md). The
# models set their own threads. Libraries loaded before this module are limited at start-up
# (runtime.limit_blas_threads); an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
