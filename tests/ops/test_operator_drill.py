"""The operator's path of docs/operations.md, for real (issue 18's "done when"), in `make test`.

`scripts/operator_drill.sh` in a scratch worktree of HEAD: `make install`, a fresh `.env` from
`.env.example` (only ports, network and fleet name of its own added), `make up OFFLINE=1
TRIAL=1` (waits for health), tenants provisioned through the REST API, `make down` and `make up`,
an upgrade (a new commit, `make up`: every bot moves to the new client image in batches), `make
rollback` (every bot back on the previous image) and `make uninstall` (nothing of the fleet
left); after each step every tenant's bot answers /start through the trial stack's Telegram
emulator. The Docker Engine restart is tests/ops/test_dockerd_restart.py (an engine of its own:
this one is shared with the other engine tests). About 4.5 minutes on a quiet machine.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.docker_support import (  # noqa: F401 - the fixture, used by name
    DockerEnv,
    fixture_docker_env,
)

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "operator_drill.sh"
TENANTS = 2
WITHIN = 1500  # seconds: a loaded 2-core machine took ~20 minutes once

pytestmark = [pytest.mark.engine, pytest.mark.timeout(WITHIN + 60)]


def test_the_operators_path_of_the_docs_brings_every_bot_back_after_each_step(
    docker_env: DockerEnv,
) -> None:
    env = {**os.environ, "DRILL_TENANTS": str(TENANTS)}
    if docker_env.docker_host:
        env["DOCKER_HOST"] = docker_env.docker_host
    try:
        run = subprocess.run(
            ["bash", str(DRILL)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=WITHIN
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-4000:]
        pytest.fail(f"the drill did not finish within {WITHIN} s:\n{tail!r}")
    log = run.stderr
    assert run.returncode == 0, f"the drill failed (exit {run.returncode}):\n{log[-5000:]}"
    # Every step ran, and after each one every bot answered.
    steps = [
        "make up OFFLINE=1 TRIAL=1",
        "make down, make up",
        "upgrade: a new commit",
        "make rollback",
        "make uninstall YES=1",
    ]
    for step in steps:
        assert step in log, f"step {step!r} missing from the drill's log:\n{log[-3000:]}"
    answered = re.findall(rf"all {TENANTS} bots answered /start", log)
    assert len(answered) == 4, log[-3000:]  # first up, after down/up, upgrade, rollback
    assert re.search(r"every bot on botfleet-client:\S+", log)
    assert re.search(r"every bot back on botfleet-client:\S+", log)
    assert log.rstrip().endswith("passed"), log[-2000:]
