"""A real Airflow deployment as local processes: what docker-compose.yaml runs, without Docker.

:func:`airflow_deployment` creates a fresh PostgreSQL database, migrates it with ``airflow db
migrate``, and starts the real components — ``api-server``, ``scheduler``, ``dag-processor``,
``triggerer`` and, for CeleryExecutor, ``celery worker`` on Redis — serving this project's
``dags/`` and ``plugins/``. It yields a :class:`Deployment` (REST client, AIRFLOW_HOME, the
component processes, which can be killed and restarted) and, on exit, stops every process and
drops the database. The deployment test, the benchmark and browser tests share it.

Connections and the settings Variable reach the components as environment variables, as in
production (``harness.local.LocalStack.environment()`` builds them for the sandbox).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from harness import PROJECT_ROOT

if TYPE_CHECKING:
    import httpx

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A database number of its own, so the Celery queues never mix with other users of this Redis.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
DAG_RUN_FINISHED = ("success", "failed")
ADMIN_USER = "admin"

# How soon a finished task hands on to the next one; `make bench BENCH_ARGS="--executor local"`
# measured both (README, "Benchmark").
HANDOFF_TUNING = {
    # A task's supervisor can see its task's sockets close a moment before the process has exited;
    # it then sleeps one heartbeat interval before it looks again: 5 s after a quarter of the tasks.
    # At 1 s (the least it takes) a running task heartbeats every second, a small load next to what a
    # task does.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    # An idle scheduler loop sleeps this long before it looks for finished tasks and for tasks their
    # end made ready: each of a run's stage changes, and each slot a finished task frees, waited
    # up to 1 s (the default). Cost: an idle scheduler used 6.9 % of a core here, not 1.8 %.
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
}
# LocalExecutor only: its workers fork from a forkserver that has imported the heavy libraries the
# tasks use (papermill alone is 1.2 s: it imports every storage backend), so a task starts with them.
# The task runner finds its DAG with Airflow's DagBag, which it imports only then: 0.53 s of CPU and
# 215 modules (the serializer, the ORM models) in every task process, half of what a resolve task
# used in a burst (py-spy, make bench). Only pinned third-party code: credit_bot itself is imported
# fresh by each task, so a change to plugins/ takes effect at the next task, not at the next
# scheduler restart.
LOCAL_EXECUTOR_TUNING = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(
        (
            "airflow.sdk.execution_time.task_runner",
            "airflow.dag_processing.dagbag",
            "airflow.providers.standard.decorators.python",
            "airflow.providers.slack.hooks.slack",
            "airflow.providers.papermill.operators.papermill",
            "papermill",
            # What papermill imports only when a notebook runs: black (it formats the parameters
            # cell) and IPython (jupyter_client looks up the kernel's directories with it).
            "black",
            "IPython",
            "looker_sdk",
        )
    ),
}


class DeploymentError(RuntimeError):
    """A component did not start, or exited; the message carries the tail of its log."""


class AirflowApiError(RuntimeError):
    """The REST API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {detail[:500]}")
        self.status = status


# ---- reachability of the services a deployment needs ------------------------------------------------


def postgres_unreachable(url: str = DEFAULT_POSTGRES_URL) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None when it can (for a clear pytest skip)."""
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        return f"PostgreSQL is not reachable at {_redact(url)}: {str(exc).strip()}"
    return None


def redis_unreachable(url: str = DEFAULT_REDIS_URL) -> str | None:
    """Why Redis at ``url`` cannot be used, or None when it can."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {_redact(url)}: {exc}"
    return None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- processes -------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[Any]:
    """``pid`` and all its descendants (psutil processes), taken before anything is killed.

    Taken first because killing a parent re-parents its children to init, which hides them.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_process_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every descendant at once (a crashed machine, not a shutdown); the pids hit."""
    return _kill_all(process_tree(pid))


def _kill_all(procs: Iterable[Any]) -> list[int]:
    import psutil

    hit = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            hit.append(proc)
    deadline = time.monotonic() + 10
    while any(process_alive(p) for p in hit) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p.pid for p in hit]


def process_alive(proc: Any) -> bool:
    """Whether a psutil process still runs: a zombie is dead (only its parent's reaping is left)."""
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Component:
    """One Airflow component: a command line, its log file, and the running process."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (a new session, its output appended to its log file)."""
        if self.alive:
            raise DeploymentError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own argv: sys.executable -m airflow ...
                self.argv,
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Airflow's graceful shutdown), then SIGKILL whatever of its tree is left."""
        if self.process is None:
            return
        tree = process_tree(self.process.pid)
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        _kill_all([*tree, *process_tree(self.process.pid)])
        self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL the process and all its descendants at once, as if its machine died."""
        if self.process is None:
            return
        kill_process_tree(self.process.pid)
        self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the component's output, for error messages."""
        if not self.log_path.exists():
            return "(no output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# ---- the REST API ----------------------------------------------------------------------------------


class AirflowApi:
    """The few calls of Airflow's REST API (``/api/v2``) that deployments are driven and checked with.

    Authenticates like any API user: a JWT from the auth manager's ``POST /auth/token``.
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout = timeout

    @cached_property
    def _http(self) -> httpx.Client:
        import httpx

        return httpx.Client(base_url=self.base_url, timeout=self._timeout, trust_env=False)

    @cached_property
    def _token(self) -> str:
        response = self._http.post(
            "/auth/token", json={"username": self._username, "password": self._password}
        )
        if response.status_code != 201:
            raise AirflowApiError("POST", "/auth/token", response.status_code, response.text)
        return str(response.json()["access_token"])

    def close(self) -> None:
        if "_http" in self.__dict__:
            self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` as the admin user; the decoded JSON body (None when empty)."""
        url = f"/api/v2{path}"
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        response = self._http.request(method, url, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(method, url, response.status_code, response.text)
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health``: metadatabase, scheduler, triggerer, dag_processor (no auth)."""
        response = self._http.get("/api/v2/monitor/health")
        if response.status_code != 200:
            raise AirflowApiError("GET", "/api/v2/monitor/health", response.status_code, response.text)
        return dict(response.json())

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/importErrors")["import_errors"])

    def dag(self, dag_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}"))

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """Pause or unpause; unpausing a DAG lets the scheduler create its scheduled runs."""
        return dict(self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused}))

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, **body: Any) -> dict[str, Any]:
        """Trigger a manual run with ``conf`` (the run's params); the new dag run."""
        payload = {"logical_date": None, "conf": dict(conf or {}), **body}
        return dict(self.request("POST", f"/dags/{dag_id}/dagRuns", json=payload))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def dag_runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first; ``run_type`` is e.g. "scheduled" or "manual"."""
        params: dict[str, Any] = {"order_by": "run_after", "limit": 100}
        if run_type:
            params["run_type"] = run_type
        return list(self.request("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"])

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300.0, states: Iterable[str] = DAG_RUN_FINISHED
    ) -> dict[str, Any]:
        """Poll the run until its state is one of ``states``; the run. TimeoutError says where it was."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in wanted:
                return run
            if time.monotonic() > deadline:
                tis = {
                    f"{t['task_id']}[{t['map_index']}]": t["state"]
                    for t in self.task_instances(dag_id, run_id)
                }
                raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f}s: {tis}")
            time.sleep(0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones one by one), with state, try_number, pid, hostname."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.request("GET", path, params={"limit": 100})["task_instances"])

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance, first to last (the history Airflow keeps across retries)."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/tries"
        return list(self.request("GET", path)["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """One try's log as text, one event per line."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        body = self.request(
            "GET",
            path,
            params={"map_index": map_index, "full_content": True},
            headers={"Accept": "application/json"},
        )
        return "\n".join(line["event"] if isinstance(line, dict) else str(line) for line in body["content"])


# ---- the deployment --------------------------------------------------------------------------------


@dataclass
class Deployment:
    """A running deployment: its REST API, its AIRFLOW_HOME, and its components by name."""

    executor: str
    home: Path
    api_url: str
    database: str
    env: dict[str, str] = field(repr=False)
    components: dict[str, Component]
    username: str = ADMIN_USER
    password: str = field(default="", repr=False)

    @cached_property
    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, self.username, self.password)

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise KeyError(f"no component {name!r}; this deployment has {sorted(self.components)}") from None

    def kill(self, name: str) -> None:
        """SIGKILL a component with all its children (its running tasks and their kernels too)."""
        self.component(name).kill()

    def start(self, name: str) -> None:
        self.component(name).start()

    def stop_component(self, name: str) -> None:
        """Stop (gracefully) a component and leave it stopped: ``check_alive`` no longer expects it."""
        component = self.component(name)
        component.stop()
        component.process = None

    def restart(self, name: str) -> None:
        """Stop (gracefully) a component if it runs, and start it again."""
        component = self.component(name)
        component.stop()
        component.start()

    def component_running(self, pid: int) -> str | None:
        """Which component's process tree holds ``pid`` (e.g. a task's pid from the REST API)."""
        for name, component in self.components.items():
            if component.alive and pid in {p.pid for p in process_tree(component.pid or 0)}:
                return name
        return None

    def check_alive(self) -> None:
        """Raise DeploymentError, with its output, if a component has exited."""
        for component in self.components.values():
            if component.process is not None and not component.alive:
                raise DeploymentError(
                    f"{component.name} exited with {component.process.returncode}:\n{component.log_tail()}"
                )

    def wait_until_healthy(self, timeout: float = 180.0) -> None:
        """Wait for the API, and for every started component to report healthy (Celery: answer a ping)."""
        deadline = time.monotonic() + timeout
        wanted = {"metadatabase"} | {key for name, key in _HEALTH_KEYS.items() if name in self.components}
        health: dict[str, Any] = {}
        while True:
            self.check_alive()
            with contextlib.suppress(OSError, AirflowApiError, _http_errors()):
                health = self.api.health()
                if all((health.get(key) or {}).get("status") == "healthy" for key in wanted):
                    break
            if time.monotonic() > deadline:
                raise DeploymentError(f"not healthy after {timeout:.0f}s: {health or 'API not answering'}")
            time.sleep(1)
        if "celery-worker" in self.components:
            self.wait_for_celery_worker(max(deadline - time.monotonic(), 10))

    def wait_for_celery_worker(self, timeout: float = 60.0) -> None:
        """Wait until the Celery worker answers a ping (the same check as the compose healthcheck)."""
        deadline = time.monotonic() + timeout
        argv = [sys.executable, "-m", "celery", "--app", _CELERY_APP, "inspect", "ping", "--timeout", "2"]
        while True:
            self.check_alive()
            done = subprocess.run(argv, env=self.env, capture_output=True, check=False)  # noqa: S603
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"the Celery worker did not answer a ping:\n{done.stdout.decode()[-2000:]}"
                )
            time.sleep(1)

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if errors := self.api.import_errors():
                raise DeploymentError(f"DAG import errors: {json.dumps(errors)[:2000]}")
            with contextlib.suppress(AirflowApiError):
                return self.api.dag(dag_id)
            if time.monotonic() > deadline:
                raise DeploymentError(f"DAG {dag_id} not parsed after {timeout:.0f}s")
            time.sleep(1)

    def stop(self) -> None:
        """Stop every component, workers first, the API server last."""
        for component in reversed(list(self.components.values())):
            component.stop()
        if "api" in self.__dict__:
            self.api.close()


_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
_CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def _http_errors() -> type[Exception]:
    import httpx

    return httpx.HTTPError


@contextmanager
def airflow_deployment(
    executor: str = "LocalExecutor",
    *,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str = DEFAULT_REDIS_URL,
    sqlite: bool = False,
    triggerer: bool = True,
    celery_concurrency: int = 2,
    startup_timeout: float = 240.0,
) -> Iterator[Deployment]:
    """Start Airflow (``executor``) against a fresh database; stop it and drop the database on exit.

    ``env`` is added to every component's environment: connections (``AIRFLOW_CONN_…``), variables
    (``AIRFLOW_VAR_…``), or Airflow configuration (``AIRFLOW__SECTION__KEY``) to override.
    ``workdir`` holds AIRFLOW_HOME and the components' logs (a temporary directory, removed on exit,
    when not given). The DAGs start paused, as in production: unpause with ``deployment.api``.
    ``sqlite`` keeps the metadata DB in a file in ``workdir`` instead of PostgreSQL, as ``airflow
    standalone`` does (LocalExecutor only): what ``make demo`` uses, on a machine with no database server.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
    if sqlite and executor != "LocalExecutor":
        raise ValueError("a SQLite metadata DB serves the LocalExecutor only")
    owns_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="credit-bot-deployment-")) if workdir is None else workdir
    name = f"credit_bot_{secrets.token_hex(4)}"
    home = root / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: password}))
    passwords_file.chmod(0o600)
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    database_url = f"sqlite:///{root / 'airflow.db'}" if sqlite else _database_url(postgres_url, name)

    full_env = {
        **os.environ,
        **_airflow_config(
            executor=executor,
            home=home,
            api_url=api_url,
            database_url=database_url,
            redis_url=redis_url,
            key_prefix=name,
            passwords_file=passwords_file,
        ),
        # What record_ledger uses to write each run's summary as its note (README: run notes).
        "AIRFLOW_CONN_CREDIT_BOT_AIRFLOW_API": json.dumps(
            {"conn_type": "http", "host": api_url, "login": ADMIN_USER, "password": password}
        ),
        **(env or {}),
    }
    python = [sys.executable, "-m", "airflow"]
    argvs = {
        "api-server": [
            *python,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--workers",
            "1",
        ],
        "scheduler": [*python, "scheduler"],
        "dag-processor": [*python, "dag-processor"],
    }
    if triggerer:
        argvs["triggerer"] = [*python, "triggerer"]
    if executor == "CeleryExecutor":
        argvs["celery-worker"] = [
            *python,
            "celery",
            "worker",
            "--concurrency",
            str(celery_concurrency),
            "--celery-hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
    deployment = Deployment(
        executor=executor,
        home=home,
        api_url=api_url,
        database=name,
        env=full_env,
        components={
            component: Component(component, argv, root / "logs" / f"{component}.log", full_env)
            for component, argv in argvs.items()
        },
        password=password,
    )
    if not sqlite:
        _create_database(postgres_url, name)
    try:
        with unwind_on_sigterm():  # a `kill` of the bench or soak still runs the cleanup below
            compile_runtime()
            _migrate(full_env, root / "logs" / "db-migrate.log")
            for component in deployment.components.values():
                component.start()
            deployment.wait_until_healthy(startup_timeout)
            yield deployment
    finally:
        deployment.stop()
        if not sqlite:
            _drop_database(postgres_url, name)
        if executor == "CeleryExecutor":
            _delete_redis_keys(redis_url, prefix=name)
        if owns_workdir:
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def unwind_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a CI or ``timeout`` deadline) unwinds the main thread like Ctrl-C does.

    Python's default for SIGTERM is to die on the spot: every ``finally`` is skipped, and a
    deployment's scheduler, workers, kernels and database outlive the bench or soak that started
    them. Inside this block SIGTERM raises ``KeyboardInterrupt``, as Ctrl-C does (not SystemExit:
    pytest would count that as one failed test and go on with the next); the previous handler
    comes back on exit, so a second SIGTERM during the cleanup still kills at once. Outside the
    main thread (where no handler can be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _airflow_config(
    *,
    executor: str,
    home: Path,
    api_url: str,
    database_url: str,
    redis_url: str,
    key_prefix: str,
    passwords_file: Path,
) -> dict[str, str]:
    """The configuration docker-compose.yaml sets, for processes on this machine."""
    from cryptography.fernet import Fernet

    config = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        # A handful of executor slots, not the default 32 forked processes, on a small machine.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # Every component must sign and check task tokens with the same secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # Ports of their own, so several deployments (and anything else) can share the machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT / "plugins"), os.environ.get("PYTHONPATH")])
        ),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **HANDOFF_TUNING,
    }
    if executor == "LocalExecutor":
        config |= LOCAL_EXECUTOR_TUNING
    if executor == "CeleryExecutor":
        config |= {
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
            # Keys of this deployment only: another deployment on the same Redis never takes its tasks.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{key_prefix}:",
        }
    return config


def compile_runtime() -> None:
    """Write the bytecode of dags/ and plugins/ (credit_bot), as an image build compiles its code.

    Every task process imports the DAG and credit_bot afresh. Without bytecode beside them — here
    PYTHONDONTWRITEBYTECODE is set, and a read-only mount cannot take it — each task compiled them
    from source again. Python checks each .pyc against its source, so an edit is never missed: it is
    only compiled again, in memory.
    """
    import compileall

    for folder in ("dags", "plugins"):
        compileall.compile_dir(PROJECT_ROOT / folder, quiet=1)


def _database_url(postgres_url: str, database: str) -> str:
    """SQLAlchemy URL of ``database`` on the server of ``postgres_url`` (psycopg2, as the image uses)."""
    parts = urlsplit(postgres_url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2", path=f"/{database}"))


def _admin(postgres_url: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(postgres_url, connect_timeout=5)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return conn


def _create_database(postgres_url: str, database: str) -> None:
    with contextlib.closing(_admin(postgres_url)) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')


def _drop_database(postgres_url: str, database: str) -> None:
    with contextlib.closing(_admin(postgres_url)) as conn, conn.cursor() as cur:
        # FORCE ends connections a killed component may have left behind.
        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _delete_redis_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


def _migrate(env: Mapping[str, str], log_path: Path) -> None:
    """``airflow db migrate``, as the compose file's airflow-init service runs it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise DeploymentError(f"airflow db migrate failed ({done.returncode}):\n{tail}")
