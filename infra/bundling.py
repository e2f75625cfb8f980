"""Build the Lambda dependency layer with pip alone: no Docker.

The layer is ``python/`` (wheels for the Lambda platform, unpacked) plus
``lib/libgomp.so.1`` (LightGBM's OpenMP runtime, which its wheel does not ship).
A finished build is cached under ``build/layers/<key>`` where the key hashes
everything that changes the output, so synth and tests reuse it.

The requirements file names every distribution the layer holds: pip installs it with
``--no-deps``, and a dependency that is neither listed nor declared unused at runtime
(``NOT_SHIPPED``) fails the build. Parts of packages that inference never imports
(``UNUSED_PARTS``: onnxruntime's offline tools and its C-API library) are removed.

Run ``python -m infra.bundling [x86_64|arm64]`` to build (or find) the layer.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.build_cache import building, prune
from infra.bytecode import (
    RUNTIME_PYTHON,
    BytecodeError,
    compile_tree,
    find_python,
    fix_mtimes,
    warn_missing_python,
)

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "lambda_src" / "requirements.txt"
CACHE_ROOT = ROOT / "build" / "layers"

PYTHON_VERSION = RUNTIME_PYTHON
# AWS's hard limit for a function plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Amazon Linux 2023 (the python3.13 runtime) ships glibc 2.34 and GCC 11's libstdc++:
# no binary in the layer may ask for newer symbol versions.
MAX_SYMBOL_VERSIONS = {"GLIBC": (2, 34), "GLIBCXX": (3, 4, 29)}
# Where libgomp comes from: scikit-learn's manylinux wheel bundles a libgomp built
# for old glibc. Only the .so is taken; scikit-learn itself never enters the layer.
LIBGOMP_DONOR = "scikit-learn==1.9.1"
# Our own ceiling for the layer, which the tests hold it to (the build refuses only Lambda's):
# room for the function code and for what the next model family brings.
LAYER_BUDGET = 160 * 1024 * 1024
# Bump when the build recipe changes in a way that alters the output.
# 5: deterministic bytecode (compiled as /opt/python/..., fixed mtimes).
# 6: --no-deps, NOT_SHIPPED and UNUSED_PARTS (whose contents are part of the key).
RECIPE = "6"
# Finished builds kept per architecture and Python (switching branches should not rebuild).
KEEP_BUILDS = 2
BUILDING_PREFIX = ".building-"  # an unfinished build's folder

_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
_MARKER = "layer.json"
# Where Lambda unpacks a layer's python/ folder: the source path its bytecode records.
LAYER_PYTHON_DIR = "/opt/python"
# Dropped from python/: not importable at runtime, or only used by test suites and type checkers.
_DROP_DIRS = frozenset({"__pycache__", "tests"})
_DROP_SUFFIXES = (".pyc", ".pyi", ".pxd", ".pyx")
_SYMVER_RE = re.compile(rb"\b(GLIBC|GLIBCXX)_(\d+(?:\.\d+)+)\b")

# Dependencies of listed distributions that the layer leaves out, and why nothing the
# functions run imports them. The runtime reaches LightGBM and Treelite through their C
# libraries (members/lightgbm.py, members/treelite_api.py), never their Python packages.
NOT_SHIPPED = {
    "scipy": "lightgbm's, treelite's and xgboost's Python packages only (104 MiB)",
    "narwhals": "lightgbm's data-frame support only",
    "packaging": "treelite's frontends and onnxruntime's tools only",
    "protobuf": "onnxruntime's tools, quantization and transformers only",
    "flatbuffers": "onnxruntime's tools only (ORT-format conversion)",
}
# Globs under python/ that inference never imports, each with why; a glob that matches
# nothing fails the build, so a new wheel that moves things is noticed.
UNUSED_PARTS = {
    "onnxruntime/tools": "model conversion and optimisation scripts (import onnx, protobuf)",
    "onnxruntime/quantization": "offline quantization (imports onnx)",
    "onnxruntime/transformers": "offline transformer-graph optimisation (imports onnx, torch)",
    "onnxruntime/backend": "the ONNX backend-test API (imports onnx)",
    "onnxruntime/datasets": "sample models for the docs",
    # The C API for other languages; the Python binding carries the whole runtime itself and
    # does not link it (no NEEDED entry: readelf -d onnxruntime_pybind11_state*.so).
    "onnxruntime/capi/libonnxruntime.so.*": "the C API library (33 MiB x86_64, 26 MiB aarch64)",
    "onnxruntime/capi/convert_npz_to_onnx_adapter.py": "a LoRA adapter conversion script",
    # XGBoost: the function loads xgboost/lib/libxgboost.so through ctypes, never the package
    # (which imports scipy); its Python sources, Dask/Spark/testing helpers all go.
    "xgboost/*.py": "the xgboost Python package (never imported: members/xgboost_api.py)",
    "xgboost/dask": "Dask integration",
    "xgboost/spark": "PySpark integration",
    "xgboost/testing": "XGBoost's own test helpers",
}


class LayerBuildError(RuntimeError):
    """The layer could not be built (pip failed, no wheel for the platform, too big)."""


@dataclass(frozen=True)
class LayerSpec:
    """What to build: a requirements file for one Lambda architecture and Python."""

    architecture: str = "x86_64"
    requirements: Path = REQUIREMENTS
    python_version: str = PYTHON_VERSION
    # An interpreter of ``python_version`` to precompile bytecode with. Lambda's /opt is
    # read-only, so without .pyc every cold start compiles numpy and Powertools (~1 s measured).
    bytecode_python: Path | None = None

    @classmethod
    def for_architecture(cls, architecture: str) -> LayerSpec:
        """The default spec, precompiling bytecode when a matching interpreter is installed."""
        return cls(architecture=architecture, bytecode_python=find_python(PYTHON_VERSION))

    def __post_init__(self) -> None:
        if self.architecture not in _ARCH:
            raise ValueError(f"architecture must be one of {sorted(_ARCH)}")

    @property
    def platforms(self) -> tuple[str, ...]:
        """pip platform tags; manylinux2014 alone would silently pick lightgbm 3.x."""
        arch = _ARCH[self.architecture]
        return (f"manylinux_2_28_{arch}", f"manylinux2014_{arch}")

    @property
    def key(self) -> str:
        """Cache key: requirements content, platform, Python version and recipe (what is left
        out and removed included)."""
        digest = hashlib.sha256()
        for part in (
            self.requirements.read_bytes(),
            *(p.encode() for p in self.platforms),
            self.python_version.encode(),
            LIBGOMP_DONOR.encode(),
            RECIPE.encode(),
            json.dumps([sorted(NOT_SHIPPED), sorted(UNUSED_PARTS)]).encode(),
            b"pyc" if self.bytecode_python else b"no-pyc",
        ):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()[:20]


def cached_layer(spec: LayerSpec, cache_root: Path = CACHE_ROOT) -> Path | None:
    """The finished build for ``spec`` if one is cached, else None."""
    target = cache_root / f"{spec.architecture}-py{spec.python_version}-{spec.key}"
    return target if (target / _MARKER).is_file() else None


def build_layer(spec: LayerSpec, cache_root: Path = CACHE_ROOT) -> Path:
    """Return the layer directory for ``spec``, building it once if it is not cached."""
    found = cached_layer(spec, cache_root)
    if found is not None:
        return found
    target = cache_root / f"{spec.architecture}-py{spec.python_version}-{spec.key}"
    started = time.monotonic()
    with building(target, BUILDING_PREFIX) as work:
        work.chmod(0o755)
        _pip_install(spec, work / "python")
        check_dependencies(work / "python", spec)
        _trim(work / "python")
        _drop_unused_parts(work / "python")
        if spec.bytecode_python is not None:
            try:
                compile_tree(spec.bytecode_python, work / "python", LAYER_PYTHON_DIR)
            except BytecodeError as exc:
                raise LayerBuildError(str(exc)) from exc
        libgomp_source = _install_libgomp(spec, work / "lib")
        for part in ("python", "lib"):
            fix_mtimes(work / part)
        _check_symbol_versions(work)
        size = tree_size(work)
        if size >= LAMBDA_UNZIPPED_LIMIT:
            raise LayerBuildError(f"layer is {size / 2**20:.0f} MiB unzipped, over Lambda's limit")
        manifest = {
            "key": spec.key,
            "architecture": spec.architecture,
            "python_version": spec.python_version,
            "platforms": list(spec.platforms),
            "bytecode": spec.bytecode_python is not None,
            "libgomp_from": libgomp_source,
            "unzipped_bytes": size,
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (work / _MARKER).write_text(json.dumps(manifest, indent=2) + "\n")
    prefix = f"{spec.architecture}-py{spec.python_version}-"
    prune(
        (
            (p, (p / _MARKER).stat().st_mtime)
            for p in cache_root.glob(f"{prefix}*")
            if (p / _MARKER).is_file()
        ),
        KEEP_BUILDS,
        cache_root.glob(f"{BUILDING_PREFIX}*"),
    )
    return target


def tree_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (what Lambda counts once unzipped)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerBuildError(f"{' '.join(cmd)} failed:\n{result.stderr[-4000:]}")


def _platform_args(spec: LayerSpec) -> list[str]:
    args = []
    for tag in spec.platforms:
        args += ["--platform", tag]
    return [
        *args,
        "--python-version",
        spec.python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]


def _pip_install(spec: LayerSpec, target: Path) -> None:
    # --no-compile: pip would write .pyc for the build host's Python, useless on 3.13.
    # --no-deps: the requirements file is the whole list (see NOT_SHIPPED).
    _pip(
        [
            "install",
            "--quiet",
            "--no-compile",
            "--no-deps",
            "--target",
            str(target),
            *_platform_args(spec),
            "-r",
            str(spec.requirements),
        ]
    )


def _trim(python_dir: Path) -> None:
    # Console scripts carry the build host's interpreter in their shebang.
    shutil.rmtree(python_dir / "bin", ignore_errors=True)
    for path in sorted(python_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in _DROP_DIRS and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_file() and (path.name.endswith(_DROP_SUFFIXES) or path.name == "py.typed"):
            path.unlink()


def check_dependencies(python_dir: Path, spec: LayerSpec) -> None:
    """Every dependency of an installed distribution is installed too, or in NOT_SHIPPED."""
    environment = {
        "python_version": spec.python_version,
        "python_full_version": f"{spec.python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": _ARCH[spec.architecture],
        "extra": "",
    }
    installed = {}
    for info in python_dir.glob("*.dist-info"):
        metadata = email.parser.Parser().parsestr((info / "METADATA").read_text())
        installed[canonicalize_name(metadata["Name"])] = metadata.get_all("Requires-Dist") or []
    missing = []
    for name, requires in sorted(installed.items()):
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            wanted = canonicalize_name(requirement.name)
            if wanted not in installed and wanted not in NOT_SHIPPED:
                missing.append(f"{name} needs {requirement}")
    if missing:
        raise LayerBuildError(
            f"{'; '.join(missing)}: pin it in {spec.requirements.name} (the layer is installed "
            "with --no-deps), or add it to infra/bundling.NOT_SHIPPED if nothing imports it"
        )


def _drop_unused_parts(python_dir: Path) -> None:
    for pattern in UNUSED_PARTS:
        matches = sorted(python_dir.glob(pattern))
        if not matches:
            raise LayerBuildError(f"{pattern} is not in the layer: review UNUSED_PARTS")
        for path in matches:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _install_libgomp(spec: LayerSpec, lib_dir: Path) -> str:
    lib_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        _pip(["download", "--quiet", "--no-deps", "-d", tmp, *_platform_args(spec), LIBGOMP_DONOR])
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise LayerBuildError(f"expected one {LIBGOMP_DONOR} wheel, got {wheels}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = [n for n in wheel.namelist() if re.search(r"\.libs/libgomp[^/]*\.so", n)]
            if len(names) != 1:
                raise LayerBuildError(f"{wheels[0].name} bundles no single libgomp: {names}")
            # lib_lightgbm.so asks for the soname libgomp.so.1; that is the file name to ship.
            (lib_dir / "libgomp.so.1").write_bytes(wheel.read(names[0]))
            return f"{wheels[0].name}:{names[0]}"


def required_symbol_versions(library: Path) -> dict[str, tuple[int, ...]]:
    """Newest GLIBC / GLIBCXX symbol version named in a shared library's version strings."""
    newest: dict[str, tuple[int, ...]] = {}
    for family, version in _SYMVER_RE.findall(library.read_bytes()):
        name, parsed = family.decode(), tuple(int(v) for v in version.split(b"."))
        newest[name] = max(newest.get(name, parsed), parsed)
    return newest


def _check_symbol_versions(layer: Path) -> None:
    for path in layer.rglob("*.so*"):
        if not path.is_file():
            continue
        for family, version in required_symbol_versions(path).items():
            if version > MAX_SYMBOL_VERSIONS[family]:
                raise LayerBuildError(f"{path.name} needs {family} {version}: too new for AL2023")


def main(argv: list[str]) -> int:
    """Build (or find) the layer and print its path and size."""
    spec = LayerSpec.for_architecture(argv[0] if argv else "x86_64")
    if spec.bytecode_python is None:
        warn_missing_python()
    started = time.monotonic()
    path = build_layer(spec)
    manifest = json.loads((path / _MARKER).read_text())
    print(
        f"{path}\n{manifest['unzipped_bytes'] / 2**20:.1f} MiB unzipped; "
        f"built in {manifest['build_seconds']} s; this run {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
