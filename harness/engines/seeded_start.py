"""Starts a script that takes no seed ('script.seed_globals'): `python seeded_start.py SEED SCRIPT [ARGS...]`.

Seeds the generators a script draws from when it sets none itself (Python's `random`, NumPy's global
generator, torch's) with SEED, then runs SCRIPT as `python SCRIPT ARGS...` would: as `__main__`, its
directory first on the import path, its arguments in `sys.argv`. The script itself is not changed.
Plain Python and torch only: it runs in the script's process, before the script.
"""

import os
import random
import runpy
import sys

seed, script = int(sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
random.seed(seed)
try:
    import numpy
except ImportError:  # a script without NumPy draws nothing from it
    pass
else:
    numpy.random.seed(seed)
import torch  # noqa: E402  (after the seed and path are in place, as the script would import it)

torch.manual_seed(seed)
runpy.run_path(script, run_name="__main__")
