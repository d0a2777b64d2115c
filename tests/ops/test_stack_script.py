"""scripts/stack.sh: what `make up` waits for (with a stand-in `docker` and compose that report
scripted container states), the image tag of a release, the releases file behind `make
rollback`, and the Makefile's use of them (`make -n`)."""

from __future__ import annotations

import os
import re
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
    svc="" fleet=""
    for a in "$@"; do
      case "$a" in
        label=com.docker.compose.service=*) svc="${a#label=com.docker.compose.service=}" ;;
        label=botfleet.fleet=*) fleet="${a#label=botfleet.fleet=}" ;;
      esac
    done
    if [ -n "$fleet" ]; then cat "$FAKE_DIR/fleet-$fleet" 2>/dev/null; exit 0; fi
    [ -f "$dir/$svc" ] && echo "$svc"
    exit 0 ;;
  image)  # image inspect NAME: present when $FAKE_DIR/images/NAME exists
    [ -e "$FAKE_DIR/images/${3//\//_}" ]
    exit ;;
  rmi)
    echo "rmi $2" >>"$FAKE_DIR/docker.calls"
    rm -f "$FAKE_DIR/images/${2//\//_}"
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
echo "$*" >>"$FAKE_DIR/compose.calls"
case " $* " in
  *" config --services "*) cat "$FAKE_DIR/services" ;;
  *" config "*) cat "$FAKE_DIR/config" 2>/dev/null || true ;;
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


# What compose v1's `config` prints of a service with a profile (caddy: profile webhooks).
PROFILED_CONFIG = """services:
  caddy:
    image: botfleet-caddy:latest
    profiles:
    - webhooks
    restart: unless-stopped
  postgres:
    image: botfleet-postgres:15
version: '3.9'
"""


def test_services_of_profiles_not_enabled_are_not_waited_for(tmp_path: Path) -> None:
    env = _fake(tmp_path, {"postgres": ["running|healthy|0|unless-stopped"]}, ["caddy", "postgres"])
    (tmp_path / "config").write_text(PROFILED_CONFIG)
    result = _wait(env)
    assert result.returncode == 0, result.stderr
    assert "all 1 services ready" in result.stderr
    # With the profile enabled, caddy is one of the stack: never created, it is waited for.
    result = _wait({**env, "COMPOSE_PROFILES": "other,webhooks"}, seconds=1)
    assert result.returncode == 1
    assert "caddy (not created)" in result.stderr


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


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def test_the_image_tag_is_the_version_and_the_commit(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.7.2"\n')
    _git(repo, "init", "-q")
    _git(repo, "add", "pyproject.toml")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one")
    env = {**os.environ, "STACK_ROOT": str(repo)}

    def tag() -> str:
        return subprocess.run(
            ["bash", str(SCRIPT), "tag"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    sha = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert tag() == f"0.7.2-{sha}"
    (repo / "untracked.txt").write_text("not part of a build")
    assert tag() == f"0.7.2-{sha}"
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.7.3"\n')
    assert tag() == f"0.7.3-{sha}-dirty"


def _stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_releases_previous_and_the_images_kept(tmp_path: Path) -> None:
    env = _fake(tmp_path, {})
    env["STACK_RELEASES"] = str(tmp_path / "releases")
    images = tmp_path / "images"
    images.mkdir()

    def up(tag: str) -> None:
        for repo in ("botfleet-platform", "botfleet-client"):
            (images / f"{repo}:{tag}").touch()
        release = {**env, "PLATFORM_IMAGE": f"botfleet-platform:{tag}"}
        release["CLIENT_IMAGE"] = f"botfleet-client:{tag}"
        release["POSTGRES_IMAGE"] = "botfleet-postgres:15"
        result = _stack(release, "record", tag)
        assert result.returncode == 0, result.stderr

    assert "nothing to roll back to" in _stack(env, "previous").stderr
    up("0.1.0-aaa")
    assert "only release 0.1.0-aaa" in _stack(env, "previous").stderr
    up("0.1.0-aaa")  # the same release again: one line
    up("0.2.0-bbb")
    previous = _stack(env, "previous")
    assert previous.returncode == 0, previous.stderr
    assert previous.stdout.split() == [
        "0.1.0-aaa", "botfleet-platform:0.1.0-aaa", "botfleet-client:0.1.0-aaa",
        "botfleet-postgres:15", "-",
    ]  # fmt: skip
    # A third release: the first one's images go, the last two releases' stay.
    up("0.3.0-ccc")
    calls = (tmp_path / "docker.calls").read_text().split("\n")
    assert "rmi botfleet-platform:0.1.0-aaa" in calls and "rmi botfleet-client:0.1.0-aaa" in calls
    assert not [c for c in calls if "0.2.0" in c or "0.3.0" in c]
    assert _stack(env, "previous").stdout.split()[0] == "0.2.0-bbb"
    # Rolled back to 0.2.0 (recorded as the newest): "previous" is now 0.3.0 again.
    up("0.2.0-bbb")
    assert _stack(env, "previous").stdout.split()[0] == "0.3.0-ccc"
    # Images gone from the engine: no rollback to them.
    (images / "botfleet-client:0.3.0-ccc").unlink()
    gone = _stack(env, "previous")
    assert gone.returncode == 1 and "botfleet-client:0.3.0-ccc" in gone.stderr
    lines = (tmp_path / "releases").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [
        "0.1.0-aaa",
        "0.2.0-bbb",
        "0.3.0-ccc",
        "0.2.0-bbb",
    ]


def test_make_rollback_runs_the_previous_images_and_waits() -> None:
    dry = subprocess.run(
        ["make", "-n", "rollback"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "scripts/stack.sh previous" in dry
    assert 'export PLATFORM_IMAGE="$2" CLIENT_IMAGE="$3"' in dry
    order = [
        "up -d --no-build --remove-orphans",
        "scripts/stack.sh wait",
        "scripts/stack.sh record",
    ]
    assert all(part in dry for part in order)
    assert [dry.index(part) for part in order] == sorted(dry.index(part) for part in order)


def test_make_up_tags_the_images_with_the_release() -> None:
    for target in (["up"], ["up", "OFFLINE=1"]):
        dry = subprocess.run(
            ["make", "-n", *target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        # (Other commits may land while this runs: the tag is read from make's own output.)
        match = re.search(r"scripts/stack.sh record (\S+)", dry)
        assert match, dry
        tag = match.group(1)
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*-([0-9a-f]{12}(-dirty)?|nogit)", tag), tag
        assert f"botfleet-platform:{tag}" in dry and f"botfleet-client:{tag}" in dry, target


def _calls(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / name
    return path.read_text().splitlines() if path.exists() else []


def test_uninstall_removes_this_fleet_only_and_keeps_volumes_unless_told(tmp_path: Path) -> None:
    env = _fake(tmp_path, {})
    env["FLEET_NAME"] = "ours"
    (tmp_path / "fleet-ours").write_text("c1\nc2\n")
    (tmp_path / "fleet-theirs").write_text("t1\n")
    kept = _stack(env, "uninstall")
    assert kept.returncode == 0, kept.stderr
    compose = _calls(tmp_path, "compose.calls")
    assert compose == [
        "-p trialtest stop master",
        "-p trialtest down --remove-orphans",
    ]
    docker = _calls(tmp_path, "docker.calls")
    assert "rm -f c1 c2" in docker and not [c for c in docker if "t1" in c]
    assert "volumes are kept" in kept.stderr and "YES=1" in kept.stderr


def test_uninstall_yes_removes_the_volumes_and_the_release_images(tmp_path: Path) -> None:
    env = _fake(tmp_path, {})
    env["YES"] = "1"
    env["STACK_RELEASES"] = str(tmp_path / "releases")
    (tmp_path / "releases").write_text(
        "0.1.0-aaa botfleet-platform:0.1.0-aaa botfleet-client:0.1.0-aaa - -\n"
    )
    gone = _stack(env, "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert "-p trialtest down --remove-orphans --volumes" in _calls(tmp_path, "compose.calls")
    docker = _calls(tmp_path, "docker.calls")
    assert "rmi botfleet-client:0.1.0-aaa" in docker
    assert not (tmp_path / "releases").exists()


def test_redis_restore_refuses_without_yes(tmp_path: Path) -> None:
    env = _fake(tmp_path, {})
    rdb = tmp_path / "redis-20300101T000000000000Z.rdb"
    rdb.write_bytes(b"REDIS0010")
    refused = _stack(env, "redis-restore", str(rdb))
    assert refused.returncode == 1 and "YES=1" in refused.stderr
    assert _calls(tmp_path, "compose.calls") == []


def test_make_uninstall_and_redis_restore_pass_yes() -> None:
    dry = subprocess.run(
        ["make", "-n", "uninstall", "redis-restore", "YES=1", "FILE=backups/x.rdb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "YES=1 scripts/stack.sh uninstall" in dry
    assert 'YES=1 scripts/stack.sh redis-restore "backups/x.rdb"' in dry
