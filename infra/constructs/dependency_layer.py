"""The Lambda layer with lightgbm, treelite, numpy, onnxruntime and libgomp, bundled without
Docker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import UNUSED_PARTS, LayerBuildError, LayerSpec, build_layer

RUNTIME = lambda_.Runtime.PYTHON_3_13
_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}
# Used only when the local build is impossible and a Docker engine is available: the same
# pinned list (--no-deps) and the same parts removed.
_DOCKER_COMMAND = (
    "pip install --no-compile --no-deps -r requirements.txt -t /asset-output/python"
    f" && rm -rf {' '.join(f'/asset-output/python/{part}' for part in UNUSED_PARTS)}"
    " && mkdir -p /asset-output/lib && cp -L /usr/lib64/libgomp.so.1 /asset-output/lib/"
)


def lambda_architecture(name: str) -> lambda_.Architecture:
    """The CDK architecture for a config value (``x86_64`` or ``arm64``)."""
    return _ARCHITECTURES[name]


@jsii.implements(ILocalBundling)
class LocalLayerBundling:
    """Build the layer with pip on this machine (cached), then link it into the asset."""

    def __init__(self, spec: LayerSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        try:
            built = build_layer(self.spec)
        except LayerBuildError as exc:
            if not _docker_engine_available():
                raise
            print(f"local layer build failed, falling back to Docker: {exc}", file=sys.stderr)
            return False
        _link_tree(built, Path(output_dir))
        return True


def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return probe.returncode == 0


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (or copy across filesystems) the cached build: 110 MB, copied on every synth."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for entry in ("python", "lib"):
        shutil.copytree(source / entry, target / entry, copy_function=link, dirs_exist_ok=True)


class DependencyLayer(Construct):
    """A ``LayerVersion`` whose asset hash is the build's cache key, so unchanged
    requirements never rebuild or re-upload the layer."""

    def __init__(self, scope: Construct, construct_id: str, *, architecture: str) -> None:
        super().__init__(scope, construct_id)
        self.spec = LayerSpec.for_architecture(architecture)
        arch = lambda_architecture(architecture)
        code = lambda_.Code.from_asset(
            str(self.spec.requirements.parent),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=self.spec.key,
            bundling=BundlingOptions(
                image=DockerImage.from_registry(
                    f"public.ecr.aws/sam/build-python{self.spec.python_version}"
                ),
                platform=f"linux/{'amd64' if architecture == 'x86_64' else 'arm64'}",
                command=["bash", "-c", _DOCKER_COMMAND],
                # jsii passes the options as one struct, not the keywords its stub declares.
                local=cast(ILocalBundling, LocalLayerBundling(self.spec)),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[arch],
            description=f"tickerserve dependencies ({architecture}, key {self.spec.key})",
        )
