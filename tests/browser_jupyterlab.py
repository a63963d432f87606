"""A throwaway JupyterLab server and the system Chromium, for tests/test_browser.py.

Everything lives in temporary folders: the notebooks' root, Jupyter's config, data,
runtime, settings and workspaces, and Chromium's profile. Nothing in the user's home
is read or written, and no process outlives the `with` block, even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Chromium is a system package (Debian: `chromium`); Playwright never downloads one.
CHROMIUM_ENV = "COURSE_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# JupyterLab user settings for the test: render every cell (no windowing, so the DOM
# holds the whole notebook) and fetch no news or update notices.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def find_chromium() -> str | None:
    """The system Chromium: $COURSE_CHROMIUM, else the first Chromium or Chrome on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_chromium(playwright, state: Path, executable: str):
    """A headless Chromium with an empty profile under `state`; returns its browser context."""
    profile, home = state / "profile", state / "home"
    for folder in (profile, home):
        folder.mkdir(parents=True, exist_ok=True)
    # Its crash-report database and caches follow $HOME and XDG: keep them out of the user's.
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=executable,
        headless=True,
        args=CHROMIUM_ARGS,
        env=env,
        viewport={"width": 1400, "height": 1000},
    )


# For servers on 127.0.0.1: no proxy from the environment.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendant_pids(pid: int) -> set[int]:
    """All processes below `pid` (Linux /proc; empty elsewhere).

    Kernels run in their own process sessions, so killing the server's process group
    alone would miss them.
    """
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # The command name may contain spaces or parentheses: split after the last ')'.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in found]
        found.update(children)
        frontier.extend(children)
    return found


def is_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return state != "Z"


class JupyterLab:
    """`jupyter lab` on a free port of 127.0.0.1, with a token, no browser, temporary state."""

    def __init__(self, root: Path, state: Path, env: dict[str, str]):
        self.root = root
        self.state = state
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = state / "jupyterlab.log"
        self.env = dict(env)
        self.process: subprocess.Popen | None = None
        self.leftover_pids: set[int] = set()

    def _write_state_dirs(self) -> None:
        dirs = {name: self.state / name for name in ("home", "config", "data", "runtime", "settings",
                                                      "workspaces", "ipython", "matplotlib")}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        for relative, values in LAB_SETTINGS.items():
            path = dirs["settings"] / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.env.update({
            "HOME": str(dirs["home"]),
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "MPLCONFIGDIR": str(dirs["matplotlib"]),
        })

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until its REST API answers."""
        self._write_state_dirs()
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers often run as root
        with open(self.log_path, "wb") as log:
            # Its own process group, so that stop() can end it and all its helpers.
            self.process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}:\n{self.log()}")
            try:
                self.api("GET", "status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log()}")

    def api(self, method: str, endpoint: str):
        """Call the server's REST API with the token; returns the decoded JSON (or None)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/{endpoint}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with LOCAL.open(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, notebook: str) -> str:
        """The JupyterLab URL that opens a notebook of the root folder."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}"

    def log(self, last: int = 4000) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def stop(self) -> set[int]:
        """Shut the server down, politely first; returns the processes that had to be killed."""
        if self.process is None:
            return set()
        started = descendant_pids(self.process.pid) | {self.process.pid}
        if self.process.poll() is None:
            try:
                self.api("POST", "shutdown")  # the server shuts its kernels down first
            except OSError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        # Kernels live in their own sessions: anything still alive is killed by id.
        survivors = {pid for pid in started if pid != self.process.pid and is_alive(pid)}
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.leftover_pids = survivors
        return survivors

    def __enter__(self) -> JupyterLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
