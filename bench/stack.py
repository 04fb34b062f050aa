"""The production stack, on this machine, for `bench.load` and `bench.soak`.

Everything runs on 127.0.0.1 and belongs to the benchmark alone: its own PostgreSQL 15 cluster
and its own redis-server (each on a free port; the machine's shared PostgreSQL and Redis are
never touched), gunicorn with `gunicorn.conf.py` exactly as the README documents it
(`PORTAL_ENV=production`), and `python worker.py` processes (plus one `--cron`) on request.

The seeded cluster is kept in BENCH_DIR (default /var/tmp/portal-bench) and reused as long as
its seed marker matches (number of users, seed, Alembic head), so a second run does not seed
again. The data keys and the signing key live next to the cluster (the seeded data is
encrypted with them); the session secret is new for every run.

A TLS-terminating reverse proxy is what production puts in front of gunicorn; the benchmark's
clients do what it does: `TRUSTED_PROXIES=1` and `X-Forwarded-Proto: https` on every request,
so the app sees HTTPS and sets its `Secure` `__Host-` cookies as in production.

Every process is started in its own session and stopped at the end (also on Ctrl-C, SIGTERM or
an error): `with Stack(...) as stack:`.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("PORTAL_BENCH_DIR", "/var/tmp/portal-bench"))
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
BIN = Path(sys.executable).parent  # the venv's gunicorn, flask and python
DB_NAME = "portal"
STOP_TIMEOUT = 30.0  # gunicorn's graceful_timeout is 20 s; RQ finishes the job at hand


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def children_of(pid: int) -> list[int]:
    """Direct children of a process (from /proc, no psutil needed)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (/proc/PID/stat); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raise_on_sigterm(signum, frame):  # noqa: ANN001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


# --- processes -------------------------------------------------------------------------------

class Ledger:
    """The process groups this benchmark started, kept in a file so that a run killed outright
    (SIGKILL: no finally) has its leftovers stopped by the next run. A pid is identified with
    its start time (/proc/PID/stat), so a pid reused by another process is never signalled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def add(self, pid: int) -> None:
        with self.lock:
            entries = self._load()
            entries[str(pid)] = _start_time(pid)
            self.path.write_text(json.dumps(entries))

    def remove(self, pid: int) -> None:
        with self.lock:
            entries = self._load()
            entries.pop(str(pid), None)
            self.path.write_text(json.dumps(entries))

    def stop_leftovers(self) -> None:
        for pid_text, started in self._load().items():
            pid = int(pid_text)
            if not started or _start_time(pid) != started:
                continue
            log(f"stopping process group {pid} left running by an earlier run")
            _signal_group(pid, signal.SIGTERM)
            for _ in range(150):
                if _start_time(pid) != started:
                    break
                time.sleep(0.1)
            else:
                _signal_group(pid, signal.SIGKILL)
        self.path.unlink(missing_ok=True)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" when there is no such pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


@dataclass
class Proc:
    """A child process in its own session (so a signal reaches it and all its children)."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    ledger: Ledger | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.alive():
            try:
                _signal_group(self.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout:.0f} s; killing it")
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        if self.ledger is not None:
            self.ledger.remove(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def spawn(name: str, cmd: list[str], env: dict, log_path: Path,
          ledger: Ledger | None = None) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    if ledger is not None:
        ledger.add(popen.pid)
    return Proc(name, popen, log_path, ledger)


def run(cmd: list[str], env: dict | None = None, timeout: float = 600, **kwargs) -> str:
    """Run a command to completion; its output on failure."""
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout, start_new_session=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


# --- PostgreSQL ------------------------------------------------------------------------------

class Postgres:
    """The benchmark's own PostgreSQL 15 cluster (initdb refuses root: it runs as `postgres`)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "pg"
        self.sockets = base / "pg-socket"
        self.log_path = base / "logs" / "postgresql.log"
        self.port = 0

    def _as_owner(self, *cmd: str, timeout: float = 180) -> str:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return run(prefix + [str(PG_BIN / cmd[0]), *cmd[1:]], timeout=timeout)

    def _options(self) -> str:
        return (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.sockets}")

    def _chown(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    @property
    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        """A new, empty cluster (any previous one and its secrets are removed)."""
        shutil.rmtree(self.data, ignore_errors=True)
        self._chown(self.data)
        os.chmod(self.data, 0o700)
        log(f"initdb {self.data}")
        self._as_owner("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--locale=C.UTF-8")

    def _stop_leftover(self) -> None:
        """A cluster left running by an interrupted run of the benchmark is stopped first."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._as_owner("pg_ctl", "status", "-D", str(self.data))
            except RuntimeError:
                return
            log("stopping the benchmark cluster left running by an earlier run")
            self._as_owner("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    def start(self) -> None:
        self._stop_leftover()
        self._chown(self.sockets)
        self._chown(self.log_path.parent)
        self.port = free_port()
        # -l: the server's output goes to the log file, never to pg_ctl's (captured) stdout
        self._as_owner("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path),
                       "-o", self._options(), "-w", "-t", "120")
        log(f"PostgreSQL 15 on 127.0.0.1:{self.port} ({self.data})")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the same port comes back."""
        self._as_owner("pg_ctl", "restart", "-D", str(self.data), "-l", str(self.log_path),
                       "-o", self._options(), "-m", "fast", "-w", "-t", "120")

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            self._as_owner("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
            log("PostgreSQL stopped")

    def url(self, database: str = DB_NAME) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = DB_NAME) -> str:
        return run([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                    "-d", self.url(database), "-c", sql], timeout=3600)


# --- Redis -----------------------------------------------------------------------------------

class RedisServer:
    """The benchmark's own redis-server: no persistence, like scripts/ensure-system.sh starts
    it (a restart loses every queued job, the worst case for the reconciler)."""

    def __init__(self, base: Path, ledger: Ledger | None = None) -> None:
        self.dir = base / "redis"
        self.log_path = base / "logs" / "redis.log"
        self.port = 0
        self.proc: Proc | None = None
        self.ledger = ledger

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"]
        self.proc = spawn("redis", cmd, os.environ.copy(), self.log_path, self.ledger)
        deadline = time.monotonic() + 20
        while not self.answers():
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start:\n" + self.proc.log_tail())
            time.sleep(0.05)
        log(f"Redis on 127.0.0.1:{self.port}")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(10)
            self.proc = None


# --- the seeded database ---------------------------------------------------------------------

def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(ROOT / "portal" / "migrations")).get_current_head() or ""


def persistent_secrets(base: Path) -> dict:
    """DATA_KEYS and SIGNING_KEY of the seeded cluster (the data is encrypted with them)."""
    path = base / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from portal.requests.signing import new_private_key_b64

    values = {"DATA_KEYS": "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
              "SIGNING_KEY": new_private_key_b64()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


# --- the stack -------------------------------------------------------------------------------

@dataclass
class Stack:
    """PostgreSQL + Redis + gunicorn (+ workers): `with Stack(users=...) as stack:`."""

    users: int = 100_000
    seed: int = 1
    web: bool = True
    workers: int = 0
    cron: bool = False
    bench_routes: bool = False
    web_concurrency: int | None = None
    reseed: bool = False
    base: Path = BENCH_DIR
    postgres: Postgres = field(init=False)
    redis: RedisServer = field(init=False)
    web_port: int = field(init=False, default=0)
    procs: list[Proc] = field(init=False, default_factory=list)
    credentials: dict = field(init=False, default_factory=dict)
    _exit: ExitStack = field(init=False, default_factory=ExitStack)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.base / "processes.json")
        self.postgres = Postgres(self.base)
        self.redis = RedisServer(self.base, self.ledger)
        self.secret_key = secrets.token_hex(32)
        self.logs = self.base / "logs"

    # -- lifecycle --

    def __enter__(self) -> Stack:
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        self._exit.callback(signal.signal, signal.SIGTERM, previous)
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        log("stopping the stack")
        self._exit.close()

    def _lock(self) -> None:
        """One run at a time per BENCH_DIR: a second one would stop the first one's cluster
        and processes as leftovers. The lock dies with the process that holds it."""
        fd = os.open(self.base / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RuntimeError(f"another benchmark run (pid {holder}) is using {self.base}; "
                               "wait for it or set PORTAL_BENCH_DIR") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._exit.callback(os.close, fd)

    def _start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._lock()
        self.ledger.stop_leftovers()
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        if not self.postgres.exists:
            (self.base / "secrets.json").unlink(missing_ok=True)
            (self.base / "seed.json").unlink(missing_ok=True)
            self.postgres.init()
        self.postgres.start()
        self._exit.callback(self.postgres.stop)
        self.redis.start()
        self._exit.callback(self.redis.stop)
        self._ensure_seeded()
        if self.web:
            self.start_web()
        for number in range(1, self.workers + 1):
            self.start_worker(f"worker-{number}")
        if self.cron:
            self.start_worker("cron", "--cron")

    def env(self, **extra: str) -> dict:
        """The production environment of every portal process in this run."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PORTAL_", "SESSION_", "SMTP_", "MAIL_", "LOGIN_LIMIT"))
               and k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATA_KEYS",
                             "SIGNING_KEY", "WEB_CONCURRENCY", "WEB_THREADS", "BIND", "PORT",
                             "TRUSTED_PROXIES", "RATELIMIT_ENABLED", "FLASK_APP"}}
        env.update(persistent_secrets(self.base))
        env.update({
            "PORTAL_ENV": "production",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.postgres.url(),
            "REDIS_URL": self.redis.url,
            "PORTAL_INSTANCE": str(self.base / "instance"),
            "PORTAL_BASE_URL": "https://portal.bench.invalid",
            # Mails go to files: the machine has no SMTP relay (a documented setting).
            "MAIL_BACKEND": "file",
            "MAIL_OUTBOX": str(self.base / "outbox"),
            "TRUSTED_PROXIES": "1",
            "PYTHONUNBUFFERED": "1",
        })
        if self.web_concurrency:
            env["WEB_CONCURRENCY"] = str(self.web_concurrency)
        env.update(extra)
        return env

    def flask(self, *args: str, timeout: float = 3600) -> str:
        return run([str(BIN / "flask"), "--app", "portal", *args], env=self.env(),
                   timeout=timeout)

    # -- data --

    @property
    def credentials_path(self) -> Path:
        return self.base / "credentials.json"

    def _marker(self) -> dict:
        return {"users": self.users, "seed": self.seed, "alembic_head": alembic_head()}

    def _ensure_seeded(self) -> None:
        marker_path = self.base / "seed.json"
        wanted = self._marker()
        stored = json.loads(marker_path.read_text()) if marker_path.exists() else {}
        if (not self.reseed and self.credentials_path.exists()
                and {k: stored.get(k) for k in wanted} == wanted):
            log(f"reusing the seeded database ({self.users} users, seed {self.seed}, "
                f"seeded {stored.get('seeded_at', '?')})")
            self.credentials = json.loads(self.credentials_path.read_text())
            return
        marker_path.unlink(missing_ok=True)
        self.postgres.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", "postgres")
        self.postgres.psql(f"CREATE DATABASE {DB_NAME}", "postgres")
        log("migrating: flask --app portal db upgrade")
        self.flask("db", "upgrade")
        log(f"seeding: flask --app portal seed-demo --users {self.users} --seed {self.seed}")
        started = time.monotonic()
        self.flask("seed-demo", "--users", str(self.users), "--credentials",
                   str(self.credentials_path), "--seed", str(self.seed), timeout=4 * 3600)
        seconds = time.monotonic() - started
        log(f"seeded in {seconds:.0f} s; VACUUM ANALYZE (as autovacuum would in time)")
        self.postgres.psql("VACUUM (ANALYZE)")
        os.chmod(self.credentials_path, 0o600)
        self.credentials = json.loads(self.credentials_path.read_text())
        marker_path.write_text(json.dumps({**wanted, "seconds": round(seconds),
                                           "seeded_at": time.strftime("%Y-%m-%d %H:%M")}))

    # -- portal processes --

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self) -> None:
        """gunicorn with gunicorn.conf.py, as the README's production section runs it."""
        self.web_port = free_port()
        extra = {"BIND": f"127.0.0.1:{self.web_port}", "PORT": str(self.web_port)}
        if self.bench_routes:
            extra["PORTAL_BENCH_ROUTES"] = "1"
        cmd = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "portal:create_app()"]
        proc = self._spawn("gunicorn", cmd, self.env(**extra))
        self._wait_for_web(proc)
        deadline = time.monotonic() + 30
        wanted = self.web_concurrency or (os.cpu_count() or 1) * 2 + 1
        while len(workers := children_of(proc.pid)) < wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        log(f"gunicorn on {self.web_url}: {len(workers)} workers "
            f"(WEB_CONCURRENCY={self.web_concurrency or 'default'}), pid {proc.pid}")

    def _wait_for_web(self, proc: Proc) -> None:
        import http.client

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not proc.alive():
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=5)
                conn.request("GET", "/logga-in", headers={"X-Forwarded-Proto": "https"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer:\n" + proc.log_tail())

    def start_worker(self, name: str, *args: str) -> Proc:
        return self._spawn(name, [str(BIN / "python"), "worker.py", *args], self.env())

    def _spawn(self, name: str, cmd: list[str], env: dict) -> Proc:
        proc = spawn(name, cmd, env, self.logs / f"{name}.log", self.ledger)
        self.procs.append(proc)
        self._exit.callback(proc.stop)
        return proc

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def web_worker_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each gunicorn worker process, by pid."""
        found = {}
        for pid in children_of(self.proc("gunicorn").pid):
            if (seconds := cpu_seconds(pid)) is not None:
                found[pid] = seconds
        return found

    def portal_processes(self) -> dict[str, int]:
        """Every long-lived portal process now: gunicorn master and workers, RQ workers,
        cron (work horses forked per job are short-lived and not listed)."""
        found = {}
        for proc in self.procs:
            if not proc.alive():
                continue
            found[proc.name] = proc.pid
            if proc.name == "gunicorn":
                for pid in children_of(proc.pid):
                    found[f"gunicorn-worker-{pid}"] = pid
        return found


def add_stack_arguments(parser, web: bool = True) -> None:
    """The options of the seeded stack, the same for bench.load, bench.soak and this module."""
    parser.add_argument("--users", type=int, default=100_000, help="seeded users (100 000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the data generator")
    parser.add_argument("--reseed", action="store_true", help="seed again even if it matches")
    if web:
        parser.add_argument("--web-concurrency", type=int, default=None,
                            help="gunicorn workers (default: as gunicorn.conf.py, 2 x cores + 1)")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.stack [--users N] [--seed S] [--reseed]`: prepare the seeded cluster
    (initdb, migrate, seed, VACUUM ANALYZE) without running a benchmark, then stop it."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    add_stack_arguments(parser, web=False)
    args = parser.parse_args(argv)
    with Stack(users=args.users, seed=args.seed, reseed=args.reseed, web=False) as stack:
        log(f"ready: {stack.postgres.data} ({args.users} users, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
