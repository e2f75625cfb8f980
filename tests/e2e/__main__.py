"""``make e2e``: the whole loop against a throw-away stage in your AWS account.

    python -m tests.e2e [--keep]

With AWS credentials (AWS_PROFILE, SSO, environment, an instance role) and a region: deploy
stage ``e2e-<id>`` like cdk.json's ``e2e`` entry, create a predict and an outcomes role
(route-scoped), run tests/e2e/test_loop.py against it, then destroy the stage, its retained
buckets and log groups, and the roles (``--keep`` leaves everything for a look, and prints how
to remove it). Without credentials it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.aws import (
    Stage,
    create_caller_roles,
    delete_caller_roles,
    delete_retained,
    new_stage,
    retained_resources,
)

ROOT = Path(__file__).resolve().parents[2]
NO_CREDENTIALS = (
    "make e2e: no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO or an instance "
    "role), so nothing was deployed; the same loop runs locally in make test (tests/e2e)"
)


def say(message: str) -> None:
    print(f"[make e2e] {message}", flush=True)


def credentials(session: Any) -> Any:
    """The credentials botocore finds, or None (never an error: no account is a normal case)."""
    try:
        found = session.get_credentials()
        return None if found is None else found.get_frozen_credentials()
    except Exception:  # a broken profile or SSO cache: as good as none, say so
        return None


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    say("$ " + " ".join(command))
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make e2e", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="Leave the stage for a look.")
    args = parser.parse_args(argv)

    os.environ.setdefault("AWS_EC2_METADATA_TIMEOUT", "2")
    import boto3

    session = boto3.Session()
    if credentials(session) is None:
        print(NO_CREDENTIALS)
        return 0
    region = session.region_name
    if not region:
        say("set a region (AWS_REGION or your profile's region) to deploy the test stage")
        return 2
    account = session.client("sts").get_caller_identity()["Account"]
    stage = Stage(new_stage(), region, account, ROOT / "build" / "e2e")
    stage.workdir.mkdir(parents=True, exist_ok=True)
    say(f"stage {stage.name} in account {account}, {region}: deploy (about 10 minutes), run "
        "the loop, destroy everything it made")  # fmt: skip
    started = time.monotonic()
    env = {**os.environ, "E2E_TARGET": "aws", "E2E_STAGE": stage.name, "E2E_REGION": region,
           "E2E_ACCOUNT": account, "E2E_WORKDIR": str(stage.workdir)}  # fmt: skip
    iam = session.client("iam")
    code = 1
    try:
        if run(stage.bootstrap_command()) != 0 or run(stage.deploy_command()) != 0:
            say("deploy failed; removing what was created")
            return 1
        try:
            roles = create_caller_roles(iam, stage, stage.outputs())
            env.update(E2E_PREDICT_ROLE=roles["predict"], E2E_OUTCOMES_ROLE=roles["outcomes"])
        except Exception as exc:  # e.g. no iam:CreateRole: one principal, and the test says so
            env["E2E_ROLES_PROBLEM"] = f"could not create the caller roles: {exc}"
            say(env["E2E_ROLES_PROBLEM"])
        # --confcutdir: not the suite's conftest, which replaces credentials with dummies.
        code = run(
            [sys.executable, "-m", "pytest", "--confcutdir", "tests/e2e", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-v", "tests/e2e/test_loop.py"],
            env,
        )  # fmt: skip
        return code
    finally:
        if args.keep:
            say(f"kept stage {stage.name}: remove it with `make destroy STAGE={stage.name}` "
                "plus its retained buckets, and the roles tickerserve-"
                f"{stage.name}-predict/-outcomes")  # fmt: skip
        else:
            code = max(code, teardown(session, stage))
        say(f"done in {(time.monotonic() - started) / 60:.0f} min")


def teardown(session: Any, stage: Stage) -> int:
    """Remove the roles, the stacks and what the stacks retain; 1 if anything is left."""
    delete_caller_roles(session.client("iam"), stage)
    cloudformation = session.client("cloudformation")
    kept = retained_resources(cloudformation, [stage.serving_stack, stage.storage_stack])
    destroyed = run(stage.destroy_command()) == 0
    cleanup = delete_retained(session.client, kept)
    left = cleanup.left
    if not destroyed:
        left.append(f"the stacks of {stage.name}: run `make destroy STAGE={stage.name} FORCE=1`")
    for line in cleanup.kept:
        say(f"kept on purpose: {line}")
    for line in left:
        say(f"left behind: {line}")
    if not left:
        say(f"removed stage {stage.name}: its stacks, the resources they retain, the roles")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
