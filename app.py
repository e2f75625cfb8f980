#!/usr/bin/env python3
"""CDK entry point: context -> typed config -> stacks. Never calls AWS while synthesizing."""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import ServingConfig, load_config
from infra.stacks.serving import ServingStack
from infra.stacks.storage import StorageStack


def build_app(app: App, config: ServingConfig) -> list[Stack]:
    """Add the stacks for ``config`` to ``app`` and return them."""
    # Account and region come from the CLI's profile when deploying; unset, the stacks
    # stay environment-agnostic and synth needs no credentials.
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    prefix = f"Tickerserve-{config.stage}"
    serving = ServingStack(
        app,
        f"{prefix}-Serving",
        config=config,
        env=env,
    )
    stacks: list[Stack] = [serving]
    # With bucketName set, serve from an existing bucket and create no storage stack.
    if not config.bucket_name:
        storage = StorageStack(
            app,
            f"{prefix}-Storage",
            stage=config.stage,
            capture=config.capture if config.capture_on else None,
            env=env,
        )
        serving.add_stack_dependency(storage, "the function reads the model bucket")
        stacks.insert(0, storage)
    for stack in stacks:
        Tags.of(stack).add("project", "tickerserve")
        Tags.of(stack).add("stage", config.stage)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


def main() -> None:
    app = App()
    build_app(app, load_config(app.node.try_get_context))
    app.synth()


if __name__ == "__main__":
    main()
