"""The soak's fault injector: random faults from the whole matrix, at random moments, all at once.

Every fault of ``tests/dags/test_faults.py``'s matrix and more, aimed at a real deployment:
Slack and Looker errors, 429s, timeouts and dropped connections (sandbox faults), Socket Mode
drops, notebook errors and kernel deaths (claimed by the soak notebook from a folder), a task's
worker SIGKILLed mid-task, the scheduler and the triggerer restarted or killed, and ledger writes
refused by PostgreSQL. :class:`Injector` applies one by name and logs what it did.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.deployment import Deployment
    from harness.sandbox import Sandbox

DAG_ID = "credit_bot"
LEDGER_VARIABLE = "credit_bot_ledger"
CLIENT_TIMEOUT = 3  # seconds: the soak's Slack and Looker connection timeout; "timeout" faults wait longer
SLOW = {"seconds": CLIENT_TIMEOUT + 2}

# (api, method, kind, times, opts) per sandbox fault.
SANDBOX_FAULTS: dict[str, tuple[str, str, str, int, dict[str, Any]]] = {
    "slack history 429": ("slack", "conversations.history", "ratelimited", 1, {"retry_after": 1}),
    "slack history 503": ("slack", "conversations.history", "server_error", 2, {"status": 503}),
    "slack history reset": ("slack", "conversations.history", "reset", 1, {}),
    "slack history timeout": ("slack", "conversations.history", "delay", 1, SLOW),
    "slack post 429": ("slack", "chat.postMessage", "ratelimited", 2, {"retry_after": 1}),
    "slack post 500": ("slack", "chat.postMessage", "server_error", 1, {}),
    "slack post reset": ("slack", "chat.postMessage", "reset", 1, {}),
    "slack post lost response": ("slack", "chat.postMessage", "lost_response", 1, {}),
    "slack post timeout": ("slack", "chat.postMessage", "delay", 1, SLOW),
    "slack replies 500": ("slack", "conversations.replies", "server_error", 2, {}),
    "slack replies timeout": ("slack", "conversations.replies", "delay", 1, SLOW),
    "slack open 500": ("slack", "conversations.open", "server_error", 2, {}),
    "slack reactions 500": ("slack", "reactions.add", "server_error", 2, {}),
    "slack auth.test error": ("slack", "auth.test", "slack_error", 1, {"error": "internal_error"}),
    "slack permalink 500": ("slack", "chat.getPermalink", "server_error", 1, {}),
    "slack any 429 x3": ("slack", "*", "ratelimited", 3, {"retry_after": 1}),
    "looker look 500": ("looker", "GET /looks/{id}", "server_error", 2, {}),
    "looker look reset": ("looker", "GET /looks/{id}", "reset", 2, {}),
    "looker look timeout": ("looker", "GET /looks/{id}", "delay", 1, SLOW),
    "looker look 401": ("looker", "GET /looks/{id}", "unauthorized", 1, {}),
    "looker look 404": ("looker", "GET /looks/{id}", "not_found", 1, {}),
    "looker run sql 500 x3": ("looker", "GET /queries/{id}/run/{format}", "server_error", 3, {}),
    "looker run sql lost response": ("looker", "GET /queries/{id}/run/{format}", "lost_response", 1, {}),
    "looker 429": ("looker", "*", "ratelimited", 1, {"retry_after": 1}),
    "looker login 500": ("looker", "POST /login", "server_error", 1, {}),
}
# Faults of the deployment itself: spaced out, they cost tens of seconds each.
HEAVY = frozenset(
    {
        "worker SIGKILL mid-task",
        "scheduler restart",
        "scheduler SIGKILL",
        "triggerer restart",
        "triggerer SIGKILL",
        "ledger write refused",
    }
)
OTHER = (
    "socket drop",
    "socket lose acks",
    "socket refuse 5s",
    "looker tokens revoked",
    "notebook error",
    "kernel death",
)
WEIGHTS: dict[str, float] = {
    **dict.fromkeys(SANDBOX_FAULTS, 1.0),
    **dict.fromkeys(OTHER, 1.5),
    "notebook error": 2.0,
    "kernel death": 2.0,
    "worker SIGKILL mid-task": 2.0,
    "scheduler restart": 0.7,
    "scheduler SIGKILL": 0.7,
    "triggerer restart": 0.7,
    "triggerer SIGKILL": 0.7,
    "ledger write refused": 1.5,
}
HEAVY_SPACING = 20.0  # seconds between two deployment faults

_LEDGER_TRIGGER_SQL = f"""
CREATE TABLE IF NOT EXISTS soak_ledger_fault (refuse_through bigint NOT NULL);
INSERT INTO soak_ledger_fault SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM soak_ledger_fault);
CREATE SEQUENCE IF NOT EXISTS soak_ledger_writes;
CREATE OR REPLACE FUNCTION soak_refuse_ledger_write() RETURNS trigger AS $$
BEGIN
  -- A sequence, not a table: a refused write rolls back, nextval does not.
  IF nextval('soak_ledger_writes') <= (SELECT refuse_through FROM soak_ledger_fault) THEN
    RAISE EXCEPTION 'soak fault: ledger write refused';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS soak_refuse_ledger ON variable;
CREATE TRIGGER soak_refuse_ledger BEFORE INSERT OR UPDATE ON variable
  FOR EACH ROW WHEN (NEW.key = '{LEDGER_VARIABLE}') EXECUTE FUNCTION soak_refuse_ledger_write();
"""


@dataclass
class Injected:
    at: float  # seconds after the soak started
    kind: str
    detail: str
    applied: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 2), "kind": self.kind, "detail": self.detail, "applied": self.applied}


def schedule(rng: random.Random, seconds: float, count: int) -> list[tuple[float, str]]:
    """``count`` faults at random moments of the traffic, drawn by weight.

    The deployment faults (restarts, kills, refused ledger writes) take every kind in turn, so
    even a short soak has each of them once or more, one in each of equal slots spread over the
    whole day (at least ``HEAVY_SPACING`` long): packed 20 s apart from the start, a 20-minute soak
    killed or restarted the scheduler or triggerer every 20 s for its first 12.5 minutes and none
    after.
    """
    heavy_slots = min(int(seconds // HEAVY_SPACING), count // 4 + 1)
    slot = seconds / heavy_slots if heavy_slots else seconds
    kinds = sorted(HEAVY)
    rng.shuffle(kinds)
    chosen = [
        (rng.uniform(i * slot + 2, (i + 1) * slot - 2), kinds[i % len(kinds)]) for i in range(heavy_slots)
    ]
    light = {name: weight for name, weight in WEIGHTS.items() if name not in HEAVY}
    names, weights = zip(*light.items(), strict=True)
    chosen += [(rng.uniform(1, seconds), rng.choices(names, weights)[0]) for _ in range(count - heavy_slots)]
    return sorted(chosen)


@dataclass
class Injector:
    """Applies faults by name to the sandbox, the notebooks, the deployment and its database."""

    sandbox: Sandbox
    deployment: Deployment
    notebook_faults: Path
    postgres_url: str
    rng: random.Random = field(default_factory=random.Random)
    started: float = field(default_factory=time.monotonic)
    log: list[Injected] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)

    def install(self) -> None:
        """The ledger-write trigger in the deployment's database (refuses nothing until asked)."""
        with contextlib.closing(self._db()) as conn, conn.cursor() as cur:
            cur.execute(_LEDGER_TRIGGER_SQL)
        self.notebook_faults.mkdir(parents=True, exist_ok=True)

    def _db(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(f"{self.postgres_url.rsplit('/', 1)[0]}/{self.deployment.database}")
        conn.autocommit = True
        return conn

    def apply(self, name: str) -> Injected:
        at = time.monotonic() - self.started
        try:
            detail, applied = self._apply(name)
        except Exception as exc:  # a fault that could not be applied is reported, never hidden
            detail, applied = f"could not apply: {type(exc).__name__}: {exc}", False
        entry = Injected(at, name, detail, applied)
        self.log.append(entry)
        return entry

    def _apply(self, name: str) -> tuple[str, bool]:
        if name in SANDBOX_FAULTS:
            api, method, kind, times, opts = SANDBOX_FAULTS[name]
            self.sandbox.inject(api, method, kind, times=times, **opts)
            return f"{api} {method} {kind} x{times}", True
        handlers: dict[str, Callable[[], tuple[str, bool]]] = {
            "socket drop": lambda: (f"{self.sandbox.socket_disconnect(abort=True)} connection(s)", True),
            "socket lose acks": lambda: (self.sandbox.socket_lose_acks(times=2) or "next 2 acks", True),
            "socket refuse 5s": lambda: (self.sandbox.socket_refuse(seconds=5) or "5 s", True),
            "looker tokens revoked": lambda: (f"{self.sandbox.expire_looker_tokens()} token(s)", True),
            "notebook error": lambda: self._notebook("raise"),
            "kernel death": lambda: self._notebook("die"),
            "worker SIGKILL mid-task": self._kill_worker,
            "scheduler restart": lambda: self._restart("scheduler", kill=False),
            "scheduler SIGKILL": lambda: self._restart("scheduler", kill=True),
            "triggerer restart": lambda: self._restart("triggerer", kill=False),
            "triggerer SIGKILL": lambda: self._restart("triggerer", kill=True),
            "ledger write refused": self._refuse_ledger_writes,
        }
        return handlers[name]()

    def _notebook(self, kind: str) -> tuple[str, bool]:
        # The next notebook to start claims the file (an atomic rename) and fails that way.
        path = self.notebook_faults / f"{len(self.log):05d}-{kind}.fault"
        path.write_text(kind)
        return f"next notebook: {kind}", True

    def _kill_worker(self) -> tuple[str, bool]:
        import psutil

        from harness.deployment import kill_process_tree

        api = self.deployment.api
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            runs = api.request("GET", f"/dags/{DAG_ID}/dagRuns", params={"state": "running", "limit": 10})
            for run in runs["dag_runs"]:
                for ti in api.task_instances(DAG_ID, run["dag_run_id"]):
                    if ti["state"] != "running" or not ti.get("pid"):
                        continue
                    with contextlib.suppress(psutil.NoSuchProcess):
                        # The LocalExecutor worker that supervises the task: it dies with the task.
                        worker = psutil.Process(ti["pid"]).parent()
                        kill_process_tree(worker.pid)
                        return f"{ti['task_id']}[{ti['map_index']}] try {ti['try_number']}", True
            time.sleep(0.3)
        return "no task was running", False

    def _restart(self, component: str, *, kill: bool) -> tuple[str, bool]:
        if kill:
            self.deployment.kill(component)
            self.deployment.start(component)
        else:
            self.deployment.restart(component)
        self.restarts[component] = self.restarts.get(component, 0) + 1
        return ("SIGKILL, started again" if kill else "SIGTERM, started again"), True

    def _refuse_ledger_writes(self) -> tuple[str, bool]:
        # An upsert fires the trigger once or twice; the Task SDK retries a failed call 5 times.
        # 6 refusals fail one try of record_ledger (Airflow retries it), 20 fail the run.
        refusals = self.rng.choice([6, 20])
        with contextlib.closing(self._db()) as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE soak_ledger_fault SET refuse_through = "
                "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM soak_ledger_writes) + %s",
                (refusals,),
            )
        return f"next {refusals} ledger row writes refused by PostgreSQL", True

    def calm(self) -> None:
        """Stop every queued fault, so the settle period is quiet; restart anything left down."""
        self.sandbox.clear_faults()
        for path in self.notebook_faults.glob("*.fault"):
            path.unlink(missing_ok=True)
        with contextlib.closing(self._db()) as conn, conn.cursor() as cur:
            cur.execute("UPDATE soak_ledger_fault SET refuse_through = 0")
        for name, component in self.deployment.components.items():
            if not component.alive:
                self.deployment.start(name)
