"""Small file writers and helpers shared by tests (fixtures stay in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from disfer.emotions import EMOTIONS
from disfer.store import CONNECT_CONFIG


def write_votes_csv(path: Path, db: Path, participants: int = 30) -> Path:
    """Every stimulus of the store at `db` rated by each of `participants` people, as the votes
    import reads it (participant_id,stimulus_id,emotion,rt_ms)."""
    con = duckdb.connect(str(db), read_only=True, config=CONNECT_CONFIG)
    ids = [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY stimulus_id").fetchall()]
    con.close()
    lines = ["participant_id,stimulus_id,emotion,rt_ms"]
    for p in range(participants):
        for k, sid in enumerate(ids):
            lines.append(f"p{p:04d},{sid},{EMOTIONS[(p + k) % 7]},{900 + (p * 7 + k) % 400}")
    path.write_text("\n".join(lines) + "\n")
    return path


def env_with_home(home: Path) -> dict[str, str]:
    """This process's environment with `home` as HOME and no CI variables: OpenVINO's telemetry
    (and maybe other libraries' habits) stays quiet under CI, which would hide a regression."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(home)
    return env


# A sitecustomize that makes a Python process record its attempts to reach another host: an audit
# hook on socket.connect and socket.getaddrinfo (it survives fork, so a forked child's attempt is
# recorded too), appending one line per attempt to the file in $NET_LOG. Loopback and local
# (Unix) sockets are allowed: the dashboard listens on 127.0.0.1 and the browser talks to it there.
_NETWORK_WATCH = """
import os, sys
_log = os.environ.get("NET_LOG")
_LOCAL = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0", b"localhost", b"127.0.0.1"}
def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        host = args[1][0] if isinstance(args[1], tuple) else None
    else:
        return
    if host not in _LOCAL:
        with open(_log, "a") as out:
            out.write(f"{event} {host!r}\\n")
if _log:
    sys.addaudithook(_hook)
"""


def watch_network(folder: Path, root: Path) -> tuple[dict[str, str], Path]:
    """(environment, log): Python processes started with the environment (which puts `root`, the
    checkout, on the path too) write each attempt to reach a non-local host to the log."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_NETWORK_WATCH)
    log = folder / "network.log"
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(root)]), "NET_LOG": str(log)}, log


def network_attempts(log: Path) -> str:
    return log.read_text() if log.exists() else ""
