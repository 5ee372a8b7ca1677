"""Package discovery for the `soundlm` distribution (all other metadata is in pyproject.toml).

The repository root *is* the `soundlm` package (the design fixes the top-level folders modeling/, processing/,
training/, ...), so the root is mapped onto the import name and every folder below it with an `__init__.py` is
a sub-package: a new model family or module folder is packaged without editing this file. Folders that are not
part of the library (tests, benchmarks, examples, scripts, build outputs) have no `__init__.py` or are excluded.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

NOT_PACKAGED = ("tests", "tests.*", "benchmarks", "benchmarks.*", "examples", "examples.*", "scripts", "scripts.*",
                "build", "build.*", "work", "work.*", "runs", "runs.*")



class BuildPy(build_py):
    """The root package's modules, less this file (it sits in the package's folder but is not part of it)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [module for module in modules if (module[0], module[1]) != ("soundlm", "setup")]


setup(
    cmdclass={"build_py": BuildPy},
    package_dir={"soundlm": "."},
    packages=["soundlm", *(f"soundlm.{name}" for name in find_packages(".", exclude=NOT_PACKAGED))],
)
