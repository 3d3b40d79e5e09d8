"""Processes `kabashoax run` (and `kabashoax web --workers N`) start: restarted when they die, stopped
when the parent stops.

Each child is a `kabashoax` subcommand in its own session (a Ctrl-C in the terminal reaches only
the parent, which then stops its children in order) and watches its parent, so it never outlives it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time

from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)

PARENT_ENV = "KABASHOAX_PARENT_PID"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between_processes() -> None:
    """Give this process and its children one fresh prometheus-client multiprocess directory.

    Must run before prometheus_client is first imported (it reads the variable then). An operator's
    own PROMETHEUS_MULTIPROC_DIR is used as it is, but wiped like ours: its files are per process id.
    """
    if "prometheus_client" in sys.modules:
        log.warning("metrics already in use: /metrics shows this process only")
        return
    directory = os.environ.get(METRICS_ENV) or str(get_settings().data_dir.resolve() / "metrics")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    os.environ[METRICS_ENV] = directory


class Child:
    """`kabashoax ARGS...` in a subprocess, restarted with a growing pause if it exits on its own."""

    def __init__(self, name: str, args: list[str], *, pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.args = args
        self.pass_fds = pass_fds  # e.g. the web workers' shared listening socket
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name=f"child-{name}", daemon=True)

    def start(self) -> Child:
        self._watcher.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        command = [sys.executable, "-m", "kabashoax.cli", *self.args]
        return subprocess.Popen(command, env=env, start_new_session=True, pass_fds=self.pass_fds)

    def _watch(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = self._spawn()
            started = time.monotonic()
            log.info("%s started (pid %d)", self.name, self.process.pid)
            code = self.process.wait()
            _forget_metrics_of(self.process.pid)
            if self._stopping.is_set():
                return
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, 60.0)
            log.error("%s exited with status %s; restarting in %.0f s", self.name, code, pause)
            self._stopping.wait(pause)

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.poll() is None else None

    def terminate(self) -> None:
        """SIGTERM, and no restart; `stop` (or `wait_stopped`) then waits for the end."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()

    def wait_stopped(self, timeout_s: float = 30.0) -> None:
        """Wait for a terminated child, SIGKILL after `timeout_s`."""
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in %.0f s; killing it", self.name, timeout_s)
            process.kill()
            process.wait()
        _forget_metrics_of(process.pid)
        log.info("%s stopped", self.name)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; waits for the process to end."""
        stop_all([self], timeout_s)


def stop_all(children: list[Child], timeout_s: float = 30.0) -> None:
    """SIGTERM to every child at once (web workers drain in parallel), then wait for each."""
    for child in children:
        child.terminate()
    for child in children:
        child.wait_stopped(timeout_s)


def _forget_metrics_of(pid: int) -> None:
    """Drop a dead child's live gauges (its counters stay, as Prometheus expects)."""
    if os.environ.get(METRICS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def watch_parent(stop: threading.Event) -> None:
    """In a child: set `stop` when the parent that started us is gone (we were re-parented)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while not stop.wait(2.0):
            if os.getppid() != int(parent):
                log.warning("parent process %s is gone; stopping", parent)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
