"""Peak memory of a deployment while it works, and where its CPU went: every component's process
tree, kernels included.

Memory is sampled two ways. RSS counts every page a process maps once per process: the pages a
forked task process shares with the forkserver it came from (Airflow, SQLAlchemy, the providers,
imported once before the fork) are counted again in every task, so a sum of RSS overstates what
the machine needs. PSS (proportional set size, ``/proc/<pid>/smaps_rollup``) divides each page by
the number of processes mapping it, so the PSS of a process tree sums to the memory it really
holds: the figure to size a worker by. RSS stays because a container limit is checked against it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024


def process_kind(cmdline: list[str]) -> str:
    """What a deployment's process is, from its command line or the title Airflow gives it."""
    text = " ".join(cmdline)
    kinds = (
        ("ipykernel", "kernel"),  # python -m ipykernel_launcher -f …
        ("airflow worker --", "task"),  # the task process (task_runner's title)
        ("airflow supervisor", "supervisor"),  # its supervisor (base_executor's title)
        ("LocalExecutor", "executor slot"),  # an idle or busy LocalExecutor worker
        ("forkserver", "forkserver"),
        ("resource_tracker", "forkserver"),
        ("serve-logs", "serve-logs"),
        ("api_server", "api-server"),
        ("api-server", "api-server"),
        ("dag-processor", "dag-processor"),
        ("dag_processor", "dag-processor"),
        ("triggerer", "triggerer"),
        ("scheduler", "scheduler"),
    )
    return next((kind for marker, kind in kinds if marker in text), "other")


def parse_pss(smaps_rollup: str) -> int:
    """Bytes of the ``Pss:`` line of a ``/proc/<pid>/smaps_rollup`` text (kB in the file); 0 without one.

    Only ``Pss:`` itself: ``Pss_Anon:``, ``Pss_File:``, ``Pss_Dirty:`` … are parts of it, and
    ``SwapPss:`` is not resident.
    """
    for line in smaps_rollup.splitlines():
        key, _, rest = line.partition(":")
        if key == "Pss":
            return int(rest.split()[0]) * 1024  # the kernel writes every size in kB
    return 0


def read_pss(pid: int) -> int | None:
    """The PSS of process ``pid`` in bytes, or None when the kernel does not say (ended, not ours,
    a kernel before Linux 4.14 without ``smaps_rollup``)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            return parse_pss(rollup.read())
    except OSError:  # FileNotFoundError, PermissionError, ProcessLookupError (ESRCH while reading)
        return None


@dataclass
class Sample:
    rss_bytes: int
    by_kind: dict[str, int]
    processes: dict[str, int]
    pss_bytes: int = 0
    pss_by_kind: dict[str, int] = field(default_factory=dict)


def _mb(n: float) -> float:
    return round(n / MB, 1)


def summarize(samples: Iterable[Sample]) -> dict[str, Any]:
    """The peak samples: total RSS, RSS and process count by kind and RSS per kernel at the RSS peak;
    total PSS, PSS by kind, PSS per kernel and per in-flight request at the PSS peak.

    A request in flight holds one kernel while its notebook runs, so the memory one more request
    needs is (peak - idle) ÷ kernels at that peak, idle being the first sample (taken before the
    requests were posted): the task process, its supervisor and its kernel, and what the scheduler
    and API server grew by for it.
    """
    samples = list(samples)
    if not samples:
        return {"samples": 0, "peak_rss_mb": None, "peak_pss_mb": None}
    peak = max(samples, key=lambda s: s.rss_bytes)
    kernels = peak.processes.get("kernel", 0)
    most_kernels = max(samples, key=lambda s: (s.processes.get("kernel", 0), s.rss_bytes))
    pss_peak = max(samples, key=lambda s: s.pss_bytes)
    pss_kernels = pss_peak.processes.get("kernel", 0)
    idle = samples[0]
    return {
        "samples": len(samples),
        "peak_rss_mb": _mb(peak.rss_bytes),
        "idle_rss_mb": _mb(idle.rss_bytes),
        "at_peak_mb": {kind: _mb(b) for kind, b in sorted(peak.by_kind.items())},
        "processes_at_peak": dict(sorted(peak.processes.items())),
        "kernels_at_peak": kernels,
        "most_kernels": most_kernels.processes.get("kernel", 0),
        "rss_per_kernel_mb": _mb(peak.by_kind.get("kernel", 0) / kernels) if kernels else None,
        "rss_per_in_flight_request_mb": _mb((peak.rss_bytes - idle.rss_bytes) / kernels) if kernels else None,
        # None when no process's PSS could be read (no smaps_rollup): 0 MB would read as a measurement.
        "peak_pss_mb": _mb(pss_peak.pss_bytes) if pss_peak.pss_bytes else None,
        "idle_pss_mb": _mb(idle.pss_bytes) if pss_peak.pss_bytes else None,
        "pss_at_peak_mb": {kind: _mb(b) for kind, b in sorted(pss_peak.pss_by_kind.items())},
        "kernels_at_pss_peak": pss_kernels,
        "pss_per_kernel_mb": (
            _mb(pss_peak.pss_by_kind.get("kernel", 0) / pss_kernels) if pss_kernels else None
        ),
        "pss_per_in_flight_request_mb": (
            _mb((pss_peak.pss_bytes - idle.pss_bytes) / pss_kernels)
            if pss_kernels and pss_peak.pss_bytes
            else None
        ),
    }


@dataclass(frozen=True)
class CpuReading:
    kind: str
    title: str  # the command line, or the title Airflow gave the process
    seconds: float  # user + system


def cpu_used(
    first: dict[int, CpuReading], last: dict[int, CpuReading]
) -> dict[int, tuple[CpuReading, float]]:
    """Per process: its last reading and the core-seconds it used between its first and last sample.

    ``first`` holds the processes of the first sample (their CPU before the block is not counted);
    a process seen only later started inside the block and counts from zero.
    """
    return {
        pid: (reading, reading.seconds - (first[pid].seconds if pid in first else 0.0))
        for pid, reading in last.items()
    }


def cpu_by_kind(first: dict[int, CpuReading], last: dict[int, CpuReading]) -> dict[str, float]:
    """Core-seconds each kind of process used between its first and last sample, most first."""
    used: dict[str, float] = {}
    for reading, seconds in cpu_used(first, last).values():
        used[reading.kind] = used.get(reading.kind, 0.0) + seconds
    return {kind: round(s, 1) for kind, s in sorted(used.items(), key=lambda kv: -kv[1])}


def cpu_per_task(
    first: dict[int, CpuReading], last: dict[int, CpuReading], task_of: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Per task id: how many task processes ran it and their mean CPU (kernels not included).

    A task process's title ends with its task instance's id (``airflow worker -- LocalExecutor:
    <id>``); ``task_of`` maps those ids to task ids (the REST API's task instances).
    """
    totals: dict[str, list[float]] = {}
    for reading, seconds in cpu_used(first, last).values():
        words = reading.title.split()
        task = task_of.get(words[-1]) if reading.kind == "task" and words else None
        if task:
            totals.setdefault(task, []).append(seconds)
    return {
        task: {"processes": len(used), "mean_core_s": round(sum(used) / len(used), 3)}
        for task, used in sorted(totals.items())
    }


@dataclass
class MemorySampler:
    """Samples the summed RSS and PSS of ``root_pids`` and all their descendants every ``interval_s``,
    and the CPU time of each of those processes.

    RSS counts pages shared between processes (the forkserver's preloaded modules, in every task)
    once per process, so the sum overstates what the machine needs; it is the figure a container
    limit is checked against. PSS shares each page among the processes that map it, so its sum is
    what the tree holds (see the module docstring). CPU is each process's user + system time at its
    last sample: a process that ends loses up to ``interval_s`` of it.
    """

    root_pids: list[int]
    interval_s: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    first_cpu: dict[int, CpuReading] = field(default_factory=dict)
    last_cpu: dict[int, CpuReading] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        import psutil

        seen: dict[int, Any] = {}
        for pid in self.root_pids:
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    seen.setdefault(proc.pid, proc)
            except psutil.NoSuchProcess:
                continue
        total, by_kind, processes = 0, {}, {}
        pss_total, pss_by_kind = 0, {}
        first = not self.last_cpu
        for proc in seen.values():
            try:
                rss = proc.memory_info().rss
                title = " ".join(proc.cmdline())
                cpu = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue  # ended between the listing and the read
            kind = process_kind([title])
            pss = read_pss(proc.pid) or 0  # None: ended since, or unreadable; its RSS still counts
            pss_total += pss
            pss_by_kind[kind] = pss_by_kind.get(kind, 0) + pss
            self.last_cpu[proc.pid] = CpuReading(kind, title, cpu.user + cpu.system)
            if first:
                self.first_cpu[proc.pid] = self.last_cpu[proc.pid]
            total += rss
            by_kind[kind] = by_kind.get(kind, 0) + rss
            processes[kind] = processes.get(kind, 0) + 1
        return Sample(total, by_kind, processes, pss_total, pss_by_kind)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def summary(self) -> dict[str, Any]:
        return summarize(self.samples)

    def cpu_by_kind(self) -> dict[str, float]:
        return cpu_by_kind(self.first_cpu, self.last_cpu)

    def cpu_per_task(self, task_of: dict[str, str]) -> dict[str, dict[str, float]]:
        return cpu_per_task(self.first_cpu, self.last_cpu, task_of)
