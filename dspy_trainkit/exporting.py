"""Old import path of `dspy_trainkit.files.exporting`, kept for one release (0.2 removes it).

Importing it gives the new module itself, so `isinstance` checks and monkeypatching keep working.
"""

import importlib
import sys
import warnings

warnings.warn("dspy_trainkit.exporting moved to dspy_trainkit.files.exporting; the old path goes away in 0.2",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("dspy_trainkit.files.exporting")
