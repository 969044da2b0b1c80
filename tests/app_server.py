"""The real app (`streamlit run`) on loopback and Debian's chromium: the one home for starting and
waiting on them, shared by the browser tests, scripts/screenshots.py and benchmarks/.

The server's output goes to a log file, never to an unread pipe: a pipe fills at 64 KB of warnings
and the server then blocks on its next write, which a browser sees as a page that never loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
RUNNING = '[data-testid="stApp"][data-test-script-state="running"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90,
                    health: str = "/_stcore/health", name: str = "streamlit") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}{health}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{name} did not answer at {url} within {timeout} s:\n{log_tail(log)}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_app(db: Path, log: Path | None = None, env: dict[str, str] | None = None,
                args: tuple[str, ...] = (), drop_env: tuple[str, ...] = (),
                port: int | None = None) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on the store at `db`; yields its address. Its output goes to
    `log` (default: a file in the temporary folder, named in any start-up error)."""
    if log is None:
        log = Path(tempfile.mkstemp(prefix="disfer_app_", suffix=".log")[1])
    port = port or free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in drop_env}
    child_env.update({"DISFER_DB": str(db), "PYTHONPATH": str(ROOT)})
    child_env.update(env or {})  # may replace PYTHONPATH (with ROOT on it: tests_support.watch_network)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", *args],
            cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, proc, log)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def running_hosted_app(db: Path, users: list[dict], folder: Path) -> Iterator[str]:
    """The app in hosted mode, signing in through a local OpenID Connect provider (oidc-provider-mock,
    which accepts any client id and secret and offers one button per user in `users`: its claims,
    {"sub", "email", "roles"}). Logs and the secrets file go to `folder`; yields the app's address."""
    idp_port = free_port()
    mock = Path(sys.executable).with_name("oidc-provider-mock")
    idp_log = folder / "idp.log"
    with open(idp_log, "w") as out:
        idp = subprocess.Popen([str(mock), "--port", str(idp_port),
                                *[a for claims in users for a in ("--user-claims", json.dumps(claims))]],
                               stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_server(f"http://127.0.0.1:{idp_port}", idp, idp_log, timeout=60,
                        health="/.well-known/openid-configuration", name="oidc-provider-mock")
        # The redirect address names the app's port, so the port is picked here and passed on.
        app_port = free_port()
        app_url = f"http://127.0.0.1:{app_port}"
        secrets = folder / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "{app_url}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-of-enough-length"\n'
            'client_id = "disfer-studio"\nclient_secret = "any"\n'
            f'server_metadata_url = "http://127.0.0.1:{idp_port}/.well-known/openid-configuration"\n')
        with running_app(db, log=folder / "app.log", env={"DISFER_HOSTED": "1"}, port=app_port,
                         args=("--secrets.files", str(secrets))) as url:
            yield url
    finally:
        stop(idp)


def study_store(db: Path | None, folder: Path) -> Path:
    """`db`, or (when None) the demo study without fine-tuning, built in `folder`: what the
    benchmarks and the screenshot script run the app on."""
    if db is not None:
        return db
    from disfer.demo import build_demo
    from disfer.store import Store

    built = folder / "demo.duckdb"
    print("building the demo study ...", flush=True)
    build_demo(Store(built), finetune=False)
    return built


def settle(page, timeout_ms: int = 120_000, heading: str = '[data-testid="stMain"] h1') -> None:
    """Wait until the script run has finished and every element has arrived (no skeletons left)."""
    page.wait_for_selector(heading, timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        busy = (page.locator(RUNNING).count() > 0
                or page.locator('[data-testid="stStatusWidget"]').count() > 0
                or page.locator('[data-testid^="stSkeleton"]').count() > 0)
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        page.wait_for_timeout(200)
    raise TimeoutError("the page kept running")
