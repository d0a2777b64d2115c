"""`make run`: the whole platform on this machine.

With no real sales-bot credentials (SALES_BOT_TOKEN unset in the environment and in `.env`) it
runs in **sandbox mode**: the project's Telegram emulator and YooKassa fake stand in for the
outside services, and the master (Docker backend when an engine answers, else processes), the
sales bot and the owner's web (`python -m web`) run against them. It then prints how to play the owner's journey in a browser
(the emulator's chat view) or a terminal, and writes the master's settings to
`<run dir>/master.env`, which `make stats` and `make logs` read when there is no `.env`.
With real credentials, the master and the sales bot (and the web, when `.env` has
WEB_JWT_KEYS) run against Telegram and YooKassa as configured in `.env`. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from dotenv import dotenv_values

from core.secrets import generate_key

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("BOTFLEET_RUN_DIR", f"/tmp/botfleet-run-{os.getuid()}"))  # noqa: S108 - same folder as scripts/services.sh
BASE = int(os.environ.get("SANDBOX_PORT_BASE", "8000"))
PORTS = {
    "master": BASE,
    "web": BASE + 70,
    "sales": BASE + 80,
    "telegram": BASE + 81,
    "yookassa": BASE + 90,
}
# Made-up tokens of the emulated sales and operator bots (sandbox only).
SALES_TOKEN = "1000001:sandbox-sales-bot-token-000000000"  # noqa: S105
MASTER_TOKEN = "1000002:sandbox-master-bot-token-00000000"  # noqa: S105
OPERATOR_ID = 1001


def persistent_secrets() -> dict[str, str]:
    """Keys that must survive restarts (tenants in the database are encrypted with them)."""
    path = RUN_DIR / "sandbox.env"
    values = {k: v for k, v in dotenv_values(path).items() if v} if path.exists() else {}
    values.setdefault("ENCRYPTION_KEYS", generate_key())
    values.setdefault("MASTER_API_TOKEN", secrets.token_urlsafe(24))
    values.setdefault("WEB_JWT_KEYS", secrets.token_urlsafe(48))  # the owner's web's sessions
    # The web asks the sales bot to open a renewal payment with it (Renew / pay).
    values.setdefault("SALES_INTERNAL_TOKEN", secrets.token_urlsafe(24))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return values


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)  # noqa: S603 - the docker CLI
    return probe.returncode == 0


def sandbox_env() -> dict[str, dict[str, str]]:
    keys = persistent_secrets()
    telegram = f"http://127.0.0.1:{PORTS['telegram']}"
    backend = os.environ.get("SANDBOX_BACKEND") or ("docker" if docker_answers() else "process")
    common = {**os.environ, "TELEGRAM_API_URL": telegram, "LOG_LEVEL": "INFO", **keys}
    web_url = f"http://127.0.0.1:{PORTS['web']}"
    master = {
        **common,
        "MASTER_API_PORT": str(PORTS["master"]),
        "MASTER_BOT_TOKEN": MASTER_TOKEN,
        "OPERATOR_IDS": str(OPERATOR_ID),
        "DEPLOY_BACKEND": backend,
        "CLIENTS_DIR": str(ROOT / "clients"),
        "CLIENT_IMAGE": os.environ.get("CLIENT_IMAGE", "botfleet-client:test"),
        # Every sandbox server listens on 127.0.0.1 only: its throwaway bots share the host's
        # network (chosen here explicitly; a real fleet's bots get a bridge network).
        "CLIENT_NETWORK": os.environ.get("CLIENT_NETWORK", "host"),
        # Every bot's /admin offers its owner "Open the web panel" there.
        "WEB_PUBLIC_URL": web_url,
    }
    chat_view = f"{telegram}/?bot=botfleet_sales_bot&user={OPERATOR_ID}&name=Owner"
    sales = {
        **common,
        "SALES_BOT_TOKEN": SALES_TOKEN,
        "MASTER_API_URL": f"http://127.0.0.1:{PORTS['master']}",
        "YOOKASSA_SHOP_ID": "100500",
        "YOOKASSA_SECRET_KEY": "test_fake_secret",
        "YOOKASSA_API_URL": f"http://127.0.0.1:{PORTS['yookassa']}/v3",
        "YOOKASSA_TRUSTED_NETWORKS": "127.0.0.0/8",
        # After paying, the checkout page sends the owner back to the sales bot's chat.
        "YOOKASSA_RETURN_URL": chat_view,
        "WEBHOOK_PORT": str(PORTS["sales"]),
    }
    web = {
        **common,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(PORTS["web"]),
        "WEB_PUBLIC_URL": web_url,
        # Password-reset links go to the owner's chat with the sales bot, and into web.log.
        "SALES_BOT_TOKEN": SALES_TOKEN,
        "WEB_RESET_LOG_LINKS": "true",
        "SALES_INTERNAL_URL": f"http://127.0.0.1:{PORTS['sales']}",
    }
    return {"master": master, "sales": sales, "web": web, "common": common}


def write_master_env(master: dict[str, str]) -> Path:
    """The master's sandbox settings (not the servers' URLs, which `make` finds itself), for
    `make stats`/`make logs`: they ask the same deploy backend as the running master."""
    names = {"TELEGRAM_API_URL", "DOCKER_HOST", "ENCRYPTION_KEYS", "MASTER_API_TOKEN"}
    names |= {k for k in master if k.startswith(("MASTER_", "DEPLOY_", "CLIENT", "OPERATOR_"))}
    path = RUN_DIR / "master.env"
    path.write_text(
        "".join(f"{k}={shlex.quote(master[k])}\n" for k in sorted(names) if k in master)
    )
    path.chmod(0o600)
    return path


class Stack:
    """The processes `make run` started; stopped in reverse order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)

    async def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (RUN_DIR / f"{name}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, cwd=ROOT, env=env, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        self.procs.append((name, proc))
        print(f"  started {name} (pid {proc.pid}, log {RUN_DIR / (name + '.log')})", flush=True)

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.returncode is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {RUN_DIR / (name + '.log')}"
                )

    async def until_stopped(self) -> None:
        """Watch the children until Ctrl-C (a child that dies ends the run with its log)."""
        while not self.stopping.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 1)

    async def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()


async def wait_http(url: str, stack: Stack, seconds: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            stack.check()
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{url} did not answer in {seconds:.0f}s")
            await asyncio.sleep(0.3)


async def run_sandbox() -> None:
    env = sandbox_env()
    write_master_env(env["master"])
    stack = Stack()
    print(f"botfleet sandbox ({env['master']['DEPLOY_BACKEND']} backend):", flush=True)
    try:
        await stack.start(
            "telegram",
            ["-m", "telegram_emulator", "--port", str(PORTS["telegram"]), "--auto-register",
             "--bot", f"{SALES_TOKEN}=botfleet_sales_bot", "--bot", f"{MASTER_TOKEN}=botfleet_master_bot"],
            env["common"],
        )  # fmt: skip
        await stack.start(
            "yookassa",
            ["-m", "yookassa_emulator", "--port", str(PORTS["yookassa"]),
             "--webhook", f"http://127.0.0.1:{PORTS['sales']}/yookassa/webhook"],
            env["common"],
        )  # fmt: skip
        await wait_http(f"http://127.0.0.1:{PORTS['telegram']}/bot{SALES_TOKEN}/getMe", stack)
        await stack.start("master", ["-m", "master_bot"], env["master"])
        await wait_http(f"http://127.0.0.1:{PORTS['master']}/health", stack)
        await stack.start("sales", ["-m", "sales_bot"], env["sales"])
        await wait_http(f"http://127.0.0.1:{PORTS['sales']}/yookassa/webhook", stack)
        await stack.start("web", ["-m", "web"], env["web"])
        web = f"http://127.0.0.1:{PORTS['web']}"
        await wait_http(f"{web}/health", stack)
        telegram = f"http://127.0.0.1:{PORTS['telegram']}"
        chat = f"{sys.executable} -m telegram_emulator.chat --url {telegram}"
        print(
            f"""
ready. Play the owner's journey in a browser: {telegram}/
(the emulator's chat view: pick a bot and a user id, type, press buttons; links open in a tab)
  1. the sales bot @botfleet_sales_bot, user {OPERATOR_ID}: /start, buy a plan; when it asks for
     a bot token, paste any made-up one, e.g. 1234567:my-sandbox-bot-token-abcdefghij
     (the emulator creates that bot)
  2. pay: the "Оплатить" button opens the YooKassa fake's checkout page; press "Pay" there
     (the fake notifies the sales bot's webhook and brings you back to the chat)
  3. your new bot appears in the bot list: /start as a customer, /admin as user {OPERATOR_ID}
  4. operators: @botfleet_master_bot as user {OPERATOR_ID}: /clients, /stats
  5. the owner's web: {web}/dashboard — log in from your new bot: /admin →
     "🌐 Открыть веб-панель" opens a one-time link (or register there with an email;
     Swagger UI at {web}/docs)
Or in a terminal: {chat} --token {SALES_TOKEN}
  (`:N` presses button N; a link button prints its link: pay with curl -X POST <link>),
  then --token <the token you pasted>, and --token {MASTER_TOKEN} --user {OPERATOR_ID}
  make stats; make logs TENANT=client_001   (they read {RUN_DIR / "master.env"})
  REST API: http://127.0.0.1:{PORTS["master"]}/openapi.json (MASTER_API_TOKEN in {RUN_DIR / "sandbox.env"})
Ctrl-C stops everything.""",
            flush=True,
        )
        await stack.until_stopped()
    finally:
        await stack.stop()


async def run_real() -> None:
    stack = Stack()
    try:
        await stack.start("master", ["-m", "master_bot"], dict(os.environ))
        await stack.start("sales", ["-m", "sales_bot"], dict(os.environ))
        if os.environ.get("WEB_JWT_KEYS") or dotenv_values(ROOT / ".env").get("WEB_JWT_KEYS"):
            await stack.start("web", ["-m", "web"], dict(os.environ))
        await stack.until_stopped()
    finally:
        await stack.stop()


def main() -> int:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    configured = os.environ.get("SALES_BOT_TOKEN") or dotenv_values(ROOT / ".env").get(
        "SALES_BOT_TOKEN"
    )
    try:
        asyncio.run(run_real() if configured else run_sandbox())
    except RuntimeError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
