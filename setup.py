"""Package discovery that setup.cfg cannot declare: it searches one folder, and ours are two.

The core lives at the top (`dspy_trainkit` and its subpackages) and the built-in plugins under `plugins/`
(`dspy_trainkit_*`). Both are found by rule, so a new package or subpackage is in the wheel without a list to
update; `tests/test_packaging.py` checks the wheel against the source tree. Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

core = find_packages(include=["dspy_trainkit", "dspy_trainkit.*"])
builtin_plugins = find_packages("plugins", include=["dspy_trainkit_*", "dspy_trainkit_*.*"])
setup(
    packages=core + builtin_plugins,
    package_dir={name: "plugins/" + name.replace(".", "/") for name in builtin_plugins},
)
