"""The shell snippets of docs/operations.md and README.md work as written: every ```sh block is
read command by command, and each command may only name make targets that exist (`make help`)
with variables the Makefile reads, scripts that exist and are executable, and Python modules
that import, run with the project's venv. Cheap and offline: nothing is executed but `make help`
(and `apt-cache policy` on a Debian 12 host, for the Debian install line).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "operations.md", ROOT / "README.md")
MAKEFILE = (ROOT / "Makefile").read_text()
# Commands the docs may use besides make, python and the project's scripts.
KNOWN = {
    "apt-get", "cd", "chmod", "cp", "crontab", "curl", "docker", "docker-compose", "git",
    "install", "ls", "mkdir", "promtool", "rclone", "restic", "rsync", "ssh", "tar", "test",
}  # fmt: skip
PYTHONS = {"python", "python3", ".venv/bin/python"}
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
# Packages only Docker's own apt repository has (never in Debian's or Ubuntu's archive).
DOCKER_REPO_ONLY = {"docker-compose-plugin", "docker-ce", "docker-ce-cli", "docker-buildx-plugin"}


@dataclass(frozen=True)
class Command:
    doc: str
    block: int
    words: tuple[str, ...]
    heading: str  # the block's first comment line, if any

    def __str__(self) -> str:
        return f"{self.doc} block {self.block}: {' '.join(self.words)}"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S)


def commands_of(block: str) -> tuple[str, list[list[str]]]:
    """(first comment line, commands as word lists) of one ```sh block."""
    joined = re.sub(r"\\\n", " ", block)
    heading = ""
    commands: list[list[str]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            heading = heading or line.strip("# ").strip()
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token in OPERATORS:
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
        if words:
            commands.append(words)
    return heading, commands


def all_commands() -> list[Command]:
    found = []
    for doc in DOCS:
        for number, block in enumerate(sh_blocks(doc.read_text()), start=1):
            heading, commands = commands_of(block)
            for words in commands:
                found.append(Command(doc.name, number, tuple(words), heading))
    return found


def make_targets() -> set[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    return {line.split()[0] for line in plain.splitlines() if line.strip()}


COMMANDS = all_commands()


def test_the_docs_have_shell_snippets() -> None:
    assert len(COMMANDS) > 20
    assert {c.doc for c in COMMANDS} == {d.name for d in DOCS}


def test_every_command_is_one_the_docs_may_use() -> None:
    unknown = [
        str(c)
        for c in COMMANDS
        if c.words[0] not in KNOWN | PYTHONS | {"make"} and not c.words[0].startswith("scripts/")
    ]
    assert unknown == [], "commands the docs should not need (or add them to KNOWN):\n" + (
        "\n".join(unknown)
    )


def test_make_targets_exist_and_their_variables_are_read() -> None:
    targets = make_targets()
    assert {"up", "down", "install", "env", "secret"} <= targets
    wrong = []
    for command in COMMANDS:
        if command.words[0] != "make":
            continue
        for word in command.words[1:]:
            word = word.strip("[]")
            if word.startswith("-"):
                continue
            if "=" in word:
                name = word.split("=", 1)[0]
                if not re.search(rf"\b{re.escape(name)}\b", MAKEFILE):
                    wrong.append(f"{command}: the Makefile does not read {name}")
            elif word not in targets:
                wrong.append(f"{command}: no make target {word!r}")
    assert wrong == [], "\n".join(wrong)


def test_python_modules_import_and_run_in_the_venv() -> None:
    wrong = []
    for command in COMMANDS:
        if command.words[0] not in PYTHONS or "-m" not in command.words:
            continue
        module = command.words[command.words.index("-m") + 1]
        if importlib.util.find_spec(module) is None:
            wrong.append(f"{command}: no module {module}")
        elif command.words[0] != ".venv/bin/python" and module.split(".")[0] in {
            p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()
        }:
            # A system python has none of the dependencies (and before `make install` no venv).
            wrong.append(f"{command}: the project's modules run with .venv/bin/python")
    assert wrong == [], "\n".join(wrong)


def test_scripts_exist_and_are_executable() -> None:
    named = [
        (c, w)
        for c in COMMANDS
        for w in c.words
        if re.match(r"^(\./)?scripts/[\w./-]+\.(sh|py)$", w)
    ]
    wrong = [
        f"{c}: {w}"
        for c, w in named
        if not (ROOT / w).is_file() or (w.endswith(".sh") and not os.access(ROOT / w, os.X_OK))
    ]
    assert wrong == [], "\n".join(wrong)


def test_compose_files_named_exist() -> None:
    for command in COMMANDS:
        words = list(command.words)
        for i, word in enumerate(words[:-1]):
            if word == "-f" and words[0] in {"docker", "docker-compose"}:
                assert (ROOT / words[i + 1]).is_file(), str(command)


def _apt_installs() -> list[tuple[Command, list[str]]]:
    return [
        (c, [w for w in c.words[2:] if not w.startswith("-")])
        for c in COMMANDS
        if c.words[:2] == ("apt-get", "install")
    ]


def test_install_lines_ask_only_for_the_distributions_packages() -> None:
    installs = _apt_installs()
    assert installs, "the docs lost their install line"
    for command, packages in installs:
        assert not DOCKER_REPO_ONLY & set(packages), (
            f"{command}: only Docker's own apt repository has "
            f"{sorted(DOCKER_REPO_ONLY & set(packages))}"
        )
    debian = [p for c, p in installs if "Debian 12" in c.heading]
    assert debian, "no install line marked '# Debian 12'"
    assert "docker-compose" in debian[0] and "docker.io" in debian[0]


def _debian_12_with_apt_lists() -> bool:
    os_release = Path("/etc/os-release")
    if not os_release.exists() or 'VERSION_ID="12"' not in os_release.read_text():
        return False
    if "ID=debian" not in os_release.read_text() or shutil.which("apt-cache") is None:
        return False
    probe = subprocess.run(
        ["apt-cache", "policy", "make"], capture_output=True, text=True, timeout=60, check=False
    )
    return "Candidate:" in probe.stdout and "(none)" not in probe.stdout


def test_the_debian_12_line_installs_here() -> None:
    """On a Debian 12 host (with package lists): every package of the Debian line has a
    candidate in the configured repositories. Elsewhere only the line's shape is checked."""
    debian = [(c, p) for c, p in _apt_installs() if "Debian 12" in c.heading]
    if not _debian_12_with_apt_lists():
        assert debian  # the shape check above; nothing to ask apt here
        return
    for command, packages in debian:
        policy = subprocess.run(
            ["apt-cache", "policy", *packages],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        have = set(
            re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (?!\(none\))", policy, re.M)
        )
        missing = sorted(set(packages) - have)
        assert missing == [], f"{command}: no candidate on this Debian 12 host for {missing}"
