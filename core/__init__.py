"""callqa core: the analysis pipeline, the result store and the adapters (no UI code)."""

import os as _os

__version__ = "0.1.0"

# The analysis spreads a call over the cores itself (core.parallel: VAD stretches, NISQA passes,
# embedding batches, each on a single-threaded onnxruntime session). numpy's OpenBLAS would add a
# pool of its own for the odd matrix product, whose threads spin on the same cores: measured,
# 0.2-0.3 CPU-s per 3-minute call for nothing, and slower scans. Set before numpy loads (callqa's
# entry points import core first); an explicit setting in the environment wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
