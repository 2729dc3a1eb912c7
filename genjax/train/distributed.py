"""Joining a multi-process run: JAX's distributed runtime from flags or the environment.

``genjax train|evaluate|sample`` take ``--coordinator-address HOST:PORT --num-processes N
--process-id I`` (or ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``;
flags win), or ``--distributed`` where JAX detects the cluster itself (SLURM, Open MPI,
Kubernetes, TPU pods). On CPU the processes talk over gloo.

JAX's own start-up aborts the whole process (a C++ check failure and a stack trace) when the
coordinator cannot be reached or a peer never registers. :func:`initialize` therefore meets
its peers first with a small TCP handshake on the coordinator's port, bounded by ``timeout``
seconds (60 by default): process 0 listens until the N - 1 others have said hello, each other
process knocks until process 0 answers. Either side that waits in vain raises
:class:`DistributedError` with one line saying who was missing, and nothing was started.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import time

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
DEFAULT_TIMEOUT = 60.0
_MAGIC = b"genjax-join-v1"


class DistributedError(RuntimeError):
    """A multi-process run could not start: bad flags, or peers that never showed up."""


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """Where and as whom to join: ``coordinator_address`` ``HOST:PORT`` of process 0."""

    coordinator_address: str
    num_processes: int
    process_id: int
    timeout: float = DEFAULT_TIMEOUT

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.coordinator_address.rpartition(":")
        return host.strip("[]"), int(port)


def process_group(coordinator_address: str | None, num_processes: int | None,
                  process_id: int | None, *, timeout: float = DEFAULT_TIMEOUT,
                  environ: dict[str, str] | None = None) -> ProcessGroup | None:
    """The group given by the flags, else by ``JAX_*`` variables; ``None`` when neither names
    one. Raises :class:`DistributedError` (one line) for a partial or invalid group."""
    env = os.environ if environ is None else environ
    values = {
        "coordinator address": coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None,
        "number of processes": num_processes if num_processes is not None else env.get(
            "JAX_NUM_PROCESSES"),
        "process id": process_id if process_id is not None else env.get("JAX_PROCESS_ID"),
    }
    given = {k: v for k, v in values.items() if v not in (None, "")}
    if not given:
        return None
    if len(given) < 3:
        missing = ", ".join(k for k in values if k not in given)
        raise DistributedError(
            f"a multi-process run needs --coordinator-address, --num-processes and --process-id "
            f"(or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); missing: {missing}")
    address = str(given["coordinator address"])
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"--coordinator-address={address!r}; expected HOST:PORT with a "
                               "port in 1..65535, e.g. 10.0.0.1:1234")
    try:
        n, i = int(given["number of processes"]), int(given["process id"])
    except ValueError:
        raise DistributedError(
            f"--num-processes={given['number of processes']!r} --process-id="
            f"{given['process id']!r}; expected integers") from None
    if n < 1:
        raise DistributedError(f"--num-processes={n}; expected an integer >= 1")
    if not 0 <= i < n:
        raise DistributedError(f"--process-id={i}; expected an integer in [0, {n}) for "
                               f"--num-processes={n}")
    if not timeout > 0:
        raise DistributedError(f"--distributed-timeout={timeout}; expected seconds > 0")
    return ProcessGroup(address, n, i, float(timeout))


def meet_peers(group: ProcessGroup) -> None:
    """Blocks until every process of ``group`` is alive, at most ``group.timeout`` seconds.

    Raises:
      DistributedError: process 0 could not listen on the port, or not every peer arrived
        (process 0 names the missing ids), or process 0 never answered (the others).
    """
    if group.num_processes == 1:
        return
    host, port = group.host_port
    deadline = time.monotonic() + group.timeout
    if group.process_id == 0:
        _host_meeting(group, port, deadline)
    else:
        _join_meeting(group, host, port, deadline)


def _host_meeting(group: ProcessGroup, port: int, deadline: float) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("", port))
    except OSError as e:
        server.close()
        raise DistributedError(f"process 0 cannot listen on port {port} ({e.strerror}); choose "
                               "a free port in --coordinator-address") from None
    server.listen(group.num_processes)
    arrived: dict[int, socket.socket] = {}
    try:
        while len(arrived) < group.num_processes - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(1, group.num_processes)) - set(arrived))
                raise DistributedError(
                    f"processes {missing} of {group.num_processes} did not reach the coordinator "
                    f"{group.coordinator_address} within {group.timeout:g} s; start every process "
                    "with the same --coordinator-address and --num-processes")
            server.settimeout(min(left, 1.0))
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5.0)
            try:
                hello = conn.recv(len(_MAGIC) + 8)
            except OSError:
                conn.close()
                continue
            if len(hello) != len(_MAGIC) + 8 or not hello.startswith(_MAGIC):
                conn.close()
                continue
            n, i = struct.unpack("!ii", hello[len(_MAGIC):])
            if n != group.num_processes or not 0 < i < n or i in arrived:
                conn.sendall(struct.pack("!i", -1))
                conn.close()
                continue
            arrived[i] = conn
        for conn in arrived.values():  # everyone is here: go
            conn.sendall(struct.pack("!i", 1))
    finally:
        for conn in arrived.values():
            conn.close()
        server.close()


def _join_meeting(group: ProcessGroup, host: str, port: int, deadline: float) -> None:
    hello = _MAGIC + struct.pack("!ii", group.num_processes, group.process_id)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DistributedError(
                f"process {group.process_id} could not meet process 0 at "
                f"{group.coordinator_address} within {group.timeout:g} s; start process 0 with "
                "the same --coordinator-address and --num-processes, and check that the address "
                "is reachable from here")
        try:
            with socket.create_connection((host, port), timeout=min(left, 2.0)) as conn:
                conn.sendall(hello)
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                answer = conn.recv(4)
        except OSError:
            time.sleep(0.2)
            continue
        if len(answer) == 4 and struct.unpack("!i", answer)[0] == 1:
            return
        if len(answer) == 4:
            raise DistributedError(
                f"process 0 at {group.coordinator_address} refused process {group.process_id}: "
                "another process has this id, or --num-processes differs")
        time.sleep(0.2)


def initialize(group: ProcessGroup | None, *, auto: bool = False) -> None:
    """Joins the run of ``group`` (or a cluster JAX detects, ``auto``); a no-op for neither.

    Must run before anything touches a JAX backend. On CPU the collectives use gloo.
    """
    import jax

    if group is None and not auto:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if group is None:
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError) as e:
            raise DistributedError(
                f"--distributed: JAX found no cluster to join ({str(e).splitlines()[0]}); outside "
                "SLURM, Open MPI, Kubernetes or a TPU pod give --coordinator-address, "
                "--num-processes and --process-id") from None
        return
    meet_peers(group)
    jax.distributed.initialize(
        coordinator_address=group.coordinator_address, num_processes=group.num_processes,
        process_id=group.process_id, initialization_timeout=max(int(group.timeout), 1))
