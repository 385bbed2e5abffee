"""Build: generate the protobuf/gRPC modules from proto/ and compile native/*.pyx.

The generated *_pb2 modules land in pyetcd/_pb/ (git-ignored) and are never edited by hand.
protoc emits top-level imports such as ``from mvccpb import kv_pb2``; we rewrite them to
package-relative ``pyetcd._pb`` imports so the modules live inside our package.
"""
import glob
import os
import re

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(ROOT, "proto")
OUT_DIR = os.path.join(ROOT, "pyetcd", "_pb")


def generate_protos():
    from grpc_tools import protoc
    import grpc_tools

    protos = sorted(
        os.path.relpath(p, PROTO_DIR)
        for p in glob.glob(os.path.join(PROTO_DIR, "**", "*.proto"), recursive=True)
    )
    if not protos:
        return
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{well_known}",
            f"--python_out={OUT_DIR}", f"--grpc_python_out={OUT_DIR}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + " ".join(protos))
    packages = sorted({os.path.dirname(p) for p in protos if os.path.dirname(p)})
    pkg_re = re.compile(r"^(from|import) (%s)( import|\.)" % "|".join(map(re.escape, packages)), re.M)
    for pkg in packages:
        pkg_dir = os.path.join(OUT_DIR, pkg)
        init = os.path.join(pkg_dir, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()
        for path in glob.glob(os.path.join(pkg_dir, "*_pb2*.py")):
            with open(path) as f:
                src = f.read()
            new = pkg_re.sub(lambda m: f"{m.group(1)} pyetcd._pb.{m.group(2)}{m.group(3)}", src)
            if new != src:
                with open(path, "w") as f:
                    f.write(new)


class BuildPy(build_py):
    def run(self):
        generate_protos()
        # Generated packages did not exist when setup() collected the package list.
        for pkg in sorted({os.path.dirname(p) for p in glob.glob(os.path.join(OUT_DIR, "*", "__init__.py"))}):
            name = "pyetcd._pb." + os.path.basename(pkg)
            if self.packages is not None and name not in self.packages:
                self.packages.append(name)
        super().run()


class BuildExt(build_ext):
    def run(self):
        generate_protos()
        super().run()


def native_extensions():
    from Cython.Build import cythonize

    import fnmatch

    # PYETCD_NATIVE_ONLY=glob limits a development build to some modules (e.g. "mvcc_*").
    only = os.environ.get("PYETCD_NATIVE_ONLY", "*")
    exts = [
        Extension(f"pyetcd._native.{os.path.splitext(os.path.basename(p))[0]}", [p],
                  extra_compile_args=["-O3"])
        for p in sorted(glob.glob(os.path.join("native", "*.pyx")))
        if fnmatch.fnmatch(os.path.basename(p), only)
    ]
    if not exts:
        return []
    return cythonize(exts, language_level=3, include_path=["native"],
                     compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=native_extensions(), cmdclass={"build_py": BuildPy, "build_ext": BuildExt})
