"""scripts/stack.sh: what `make up` waits for (with a stand-in `docker` and compose that report
scripted container states), the image tag of a release, the releases file behind `make
rollback`, and the Makefile's use of them (`make -n`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.init_env import main as init_env
from tests.docker_support import compose_cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "stack.sh"

FAKE_DOCKER = r"""#!/usr/bin/env bash
# A docker CLI stand-in: containers are the files of $FAKE_DIR/containers (one per service),
# each line a state "status|health|exit code|restart policy", consumed one per inspect.
dir="$FAKE_DIR/containers"
case "$1" in
  ps)
    for a in "$@"; do
      case "$a" in label=com.docker.compose.service=*) svc="${a#label=com.docker.compose.service=}" ;; esac
    done
    [ -f "$dir/$svc" ] && echo "$svc"
    exit 0 ;;
  inspect)
    f="$dir/${*: -1}"
    head -n 1 "$f"
    [ "$(wc -l <"$f")" -gt 1 ] && sed -i 1d "$f"
    exit 0 ;;
esac
echo "$*" >>"$FAKE_DIR/docker.calls"
"""

FAKE_COMPOSE = r"""#!/usr/bin/env bash
case " $* " in
  *" config "*) cat "$FAKE_DIR/services" ;;
  *" logs "*) echo "last words of ${*: -1}" ;;
esac
"""


def _fake(
    tmp_path: Path, states: dict[str, list[str]], services: list[str] | None = None
) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    (tmp_path / "containers").mkdir()
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("fake-compose", FAKE_COMPOSE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for service, lines in states.items():
        (tmp_path / "containers" / service).write_text("".join(f"{line}\n" for line in lines))
    (tmp_path / "services").write_text("".join(f"{s}\n" for s in services or list(states)))
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_DIR": str(tmp_path),
        "STACK_COMPOSE": "fake-compose -p trialtest",
        "STACK_PROJECT": "trialtest",
    }


def _wait(env: dict[str, str], seconds: int = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "wait", str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_wait_returns_when_every_service_is_ready(tmp_path: Path) -> None:
    env = _fake(
        tmp_path,
        {
            "postgres": ["running|healthy|0|unless-stopped"],
            "migrate": ["exited||0|no"],
            "worker": ["running||0|always"],
            "master": [
                "running|starting|0|unless-stopped",
                "running|starting|0|unless-stopped",
                "running|healthy|0|unless-stopped",
            ],
        },
    )
    result = _wait(env)
    assert result.returncode == 0, result.stderr
    assert "still starting: master (starting)" in result.stderr
    assert "all 4 services ready" in result.stderr


def test_a_failed_one_shot_ends_the_wait_with_its_logs(tmp_path: Path) -> None:
    env = _fake(
        tmp_path,
        {"postgres": ["running|healthy|0|unless-stopped"], "migrate": ["exited||3|no"]},
    )
    result = _wait(env)
    assert result.returncode == 1
    assert "migrate exited with 3" in result.stderr
    assert "last words of migrate" in result.stderr


def test_the_timeout_names_what_is_still_starting(tmp_path: Path) -> None:
    env = _fake(
        tmp_path,
        {"sales": ["restarting||1|unless-stopped"], "redis": ["running|healthy|0|always"]},
        services=["sales", "redis", "telegram"],
    )
    result = _wait(env, seconds=1)
    assert result.returncode == 1
    assert "still not ready after 1 s" in result.stderr
    assert "sales (restarting (exit code 1))" in result.stderr
    assert "telegram (not created)" in result.stderr
    assert "redis" not in result.stderr.split("still not ready")[1]


@pytest.mark.parametrize("target", ["up", "up OFFLINE=1"])
def test_make_up_waits_for_the_stack(target: str) -> None:
    dry = subprocess.run(
        ["make", "-n", *target.split()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "scripts/stack.sh wait" in dry
    assert dry.index("up -d") < dry.index("scripts/stack.sh wait")


def _project_with_env(tmp_path: Path) -> Path:
    """The compose files beside a `.env` as `make env` writes it (nothing filled by hand)."""
    for name in ("docker-compose.yml", "docker-compose.trial.yml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    assert init_env(["--to", str(tmp_path / ".env")]) == 0
    return tmp_path


def test_the_trial_file_adds_the_emulators_on_loopback_only() -> None:
    trial = yaml.safe_load((ROOT / "docker-compose.trial.yml").read_text())
    services = trial["services"]
    assert set(services) == {"telegram", "yookassa", "master", "sales"}
    for name in ("telegram", "yookassa"):
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"]), name
        assert not any("docker.sock" in str(v) for v in services[name]["volumes"]), name
        assert services[name]["healthcheck"]["test"], name
    assert services["master"]["environment"]["TELEGRAM_API_URL"] == "http://telegram:8081"
    assert services["sales"]["depends_on"]["yookassa"] == {"condition": "service_healthy"}
    for module in ("telegram_emulator", "yookassa_emulator"):
        assert (ROOT / module / "__main__.py").is_file()


def test_trial_help_names_the_tokens_compose_resolves(tmp_path: Path) -> None:
    project = _project_with_env(tmp_path)
    cli = " ".join(compose_cli())
    env = {
        "PATH": os.environ["PATH"],
        "STACK_COMPOSE": f"{cli} -p trialhelp -f docker-compose.yml -f docker-compose.trial.yml",
        "TRIAL_SALES_BOT_TOKEN": "4242:trial-help-sales-token-abcdefgh",
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "trial-help"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    chat = ".venv/bin/python -m telegram_emulator.chat --url http://127.0.0.1:8081"
    assert f"{chat} --token 4242:trial-help-sales-token-abcdefgh" in result.stdout
    assert "--token 1000002:trial-master-bot-token-0000000 --user 1001" in result.stdout
    assert "curl -X POST" in result.stdout


def test_make_up_trial_uses_the_trial_file() -> None:
    dry = subprocess.run(
        ["make", "-n", "up", "TRIAL=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "-f docker-compose.yml -f docker-compose.trial.yml up -d" in dry
    assert "scripts/stack.sh trial-help" in dry
    plain = subprocess.run(
        ["make", "-n", "up"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "docker-compose.trial.yml" not in plain and "trial-help" not in plain
