"""Build glue for `pip install .` (metadata lives in pyproject.toml).

The engine is built by the project's own Makefile — the same objects, flags
and libraries as the CLI — and linked statically into the extension
`vitamin._core`; the CLI binary is copied into the package for `vitamin.train`
and the `vitamin` console script. Nothing is compiled twice: an in-tree build
reuses build/ when `make` already ran there.
"""
import os
import re
import shlex
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = "build"


def makefile_version():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


def make(*args):
    jobs = str(os.cpu_count() or 1)
    return subprocess.run(["make", "-s", "-C", ROOT, "-j" + jobs, "BUILD=" + BUILD, *args],
                          check=True, stdout=subprocess.PIPE, text=True).stdout


class BuildEngine(build_ext):
    def run(self):
        make(f"{BUILD}/libvitamin.a", f"{BUILD}/vitamin")
        ldlibs = shlex.split(make("print-ldlibs").strip())
        archive = os.path.join(ROOT, BUILD, "libvitamin.a")
        for ext in self.extensions:
            ext.extra_objects = [archive]
            ext.extra_link_args = ldlibs
            # relink when the engine changed, not only when _core.c did
            ext.depends = list(ext.depends) + [archive, os.path.join(ROOT, "include", "vitamin.h")]
        super().run()
        bin_dir = os.path.join(self.build_lib, "vitamin", "_bin")
        os.makedirs(bin_dir, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, BUILD, "vitamin"), os.path.join(bin_dir, "vitamin"))
        if self.inplace:
            os.makedirs(os.path.join(ROOT, "python", "vitamin", "_bin"), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, BUILD, "vitamin"), os.path.join(ROOT, "python", "vitamin", "_bin", "vitamin"))

    def get_outputs(self):
        return super().get_outputs() + [os.path.join(self.build_lib, "vitamin", "_bin", "vitamin")]


setup(
    version=makefile_version(),
    ext_modules=[Extension("vitamin._core", sources=["python/vitamin/_core.c"], include_dirs=["include"],
                           extra_compile_args=["-std=c17", "-fopenmp", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                               "-Wno-missing-field-initializers"])],
    cmdclass={"build_ext": BuildEngine},
)
