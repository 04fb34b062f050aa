"""Soak, and faults under load: `python -m bench.soak --minutes 10 [--faults]`

A bounded mixed run against the production stack of bench/stack.py (the seeded PostgreSQL,
its own Redis, gunicorn with gunicorn.conf.py, two `python worker.py` and one `--cron`):

  browsing   several logged-in sessions (the user with 200 texts, ordinary users, the coach)
             walk their pages with a short think time;
  exports    every --export-every seconds a fresh user logs in and asks for an export through
             the real form (GET the page, POST with its CSRF token); the workers build it;
  erasures   every --erase-every seconds the DPO (password + TOTP) approves an open erasure
             request on its review page; the pipeline pseudonymises the account at once.
             Day 30 and day 60 are not reached: `portal.clock.now()` is the system clock and
             only tests move it (time-machine), so the soak stops at pseudonymisation;
  RSS        of every gunicorn process and every RQ worker and cron process every 10 s.

At the end the load stops and the soak waits (at most --drain seconds) until every export and
erasure step it started has finished, and checks each in the database.

--faults adds, under the same load: Redis (the benchmark's own) stopped for --redis-outage
seconds (pages must keep answering 200, a login must work or answer a clear Swedish message,
an export request and a DPO approval taken meanwhile must be completed once Redis is back: the
reconciler); then the benchmark's PostgreSQL restarted with `pg_ctl restart -m fast` (the web
must recover without a restart, and the workers too: an export and an approval right after).
"""
from __future__ import annotations

import argparse
import http.client
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from bench.client import Browser, LoginFailed
from bench.stack import BENCH_DIR, Stack, add_stack_arguments, load_average, log, rss_kib

SAMPLE_EVERY = 10.0
RSS_TARGET = 10.0  # per cent growth from after warm-up to the end
USER_PAGES = ("/mina-uppgifter", "/texter/", "{text}", "/mina-uppgifter/export", "/konto/",
              "/mina-rattigheter", "/mina-uppgifter/logg", "/mina-uppgifter/inloggningar",
              "/mina-uppgifter/coach", "/mina-uppgifter/marknadsforing", "/")
DPO_PAGES = ("/dso/begaranden", "/dso/begaranden?sida=2", "/dso/oversikt", "/dso/raderingar")
SWEDISH_HINTS = ("försök", "inloggning", "lösenord", "Vänta", "e-postadress")


# --- what happened ------------------------------------------------------------------------------

@dataclass
class Hit:
    start: float
    end: float
    actor: str
    page: str
    status: int  # 0: no answer (connection error)
    expected: int = 200


@dataclass
class Action:
    kind: str  # "export" or "erasure"
    user_id: int
    at: float  # seconds since the start of the soak
    label: str  # "steady", "redis-down", "pg-back"
    request_id: int | None = None


@dataclass
class Window:
    name: str
    start: float
    end: float = float("inf")


@dataclass
class Recorder:
    t0: float = field(default_factory=time.monotonic)
    wall0: float = field(default_factory=time.time)
    hits: list[Hit] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label: str = "steady"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def hit(self, actor: str, page: str, call, expected: int = 200):
        """Make one request through `call` and record it; the response (or None)."""
        start, response = self.now(), None
        try:
            response = call()
            status = response.status
        except (OSError, http.client.HTTPException, LoginFailed, LookupError):
            status = 0
        with self.lock:
            self.hits.append(Hit(start, self.now(), actor, page, status, expected))
        return response

    def note(self, text: str) -> None:
        log(text)
        self.notes.append(f"[{self.now():6.1f} s] {text}")

    def window_of(self, hit: Hit) -> str | None:
        for window in self.windows:
            if hit.start < window.end and hit.end > window.start:
                return window.name
        return None


# --- the run ------------------------------------------------------------------------------------

class Soak:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack, self.args = stack, args
        self.rec = Recorder()
        self.stop = threading.Event()
        self.creds = stack.credentials
        self.password = self.creds["password"]
        self.fresh_users: list[tuple[int, str]] = []
        self.open_erasures: list[tuple[int, int]] = []
        self.pool_lock = threading.Lock()
        self.dpo_lock = threading.Lock()
        self.dpo: Browser | None = None
        self.rss: list[tuple[float, dict[str, int]]] = []
        self.threads: list[threading.Thread] = []
        self._ip = 20
        self.restarted_from: set[str] = set()

    # -- setup --

    def next_ip(self) -> str:
        self._ip += 1
        return f"192.0.2.{self._ip % 250 + 1}"

    def browser(self, email: str, totp: str | None = None) -> Browser:
        browser = Browser(self.stack.web_port, client_ip=self.next_ip())
        browser.login(email, self.password, totp)
        return browser

    def pick_data(self, count: int) -> list[tuple[int, str]]:
        """Untouched ordinary users (no export, request, erasure or active coach link) for the
        sessions and the exports, and open erasure requests of other users to approve."""
        heavy = self.creds["heavy_user_email"]
        users = self.stack.postgres.psql(
            "SELECT u.id, u.email FROM users u WHERE u.role = 'user' AND u.status = 'active' "
            "AND u.email_verified_at IS NOT NULL AND u.password_hash IS NOT NULL "
            f"AND u.email <> '{heavy}' "
            "AND NOT EXISTS (SELECT 1 FROM exports e WHERE e.user_id = u.id) "
            "AND NOT EXISTS (SELECT 1 FROM erasure_cases c WHERE c.user_id = u.id) "
            "AND NOT EXISTS (SELECT 1 FROM rights_requests r WHERE r.user_id = u.id) "
            "AND NOT EXISTS (SELECT 1 FROM coach_links l WHERE l.user_id = u.id) "
            f"ORDER BY random() LIMIT {count}")
        requests = self.stack.postgres.psql(
            "SELECT r.id, r.user_id FROM rights_requests r JOIN users u ON u.id = r.user_id "
            "WHERE r.kind = 'erasure' AND r.status = 'received' AND u.status = 'active' "
            f"AND u.role = 'user' AND u.email <> '{heavy}' "
            "AND NOT EXISTS (SELECT 1 FROM erasure_cases c WHERE c.user_id = r.user_id) "
            "AND NOT EXISTS (SELECT 1 FROM coach_links l WHERE l.user_id = r.user_id "
            "                AND l.status = 'active') "
            "ORDER BY r.id LIMIT 500")
        self.open_erasures = [tuple(map(int, row.split("|")))
                              for row in requests.split()]
        random.Random(self.args.seed).shuffle(self.open_erasures)
        rows = [row.split("|") for row in users.split()]
        return [(int(uid), email) for uid, email in rows]

    def sessions(self) -> list[tuple[str, Browser, list[str]]]:
        """The browsing sessions: heavy user, --sessions ordinary users, the coach."""
        creds, out = self.creds, []
        heavy = self.browser(creds["heavy_user_email"])
        out.append(("heavy-user", heavy, self.user_pages(heavy)))
        for number in range(self.args.sessions):
            _, email = self.fresh_users.pop()
            user = self.browser(email)
            out.append((f"user-{number + 1}", user, self.user_pages(user)))
        coach = self.browser(creds["coach_email"])
        coach_pages = ["/coach/"]
        home = coach.get("/coach/").text
        for user_id in dict.fromkeys(re.findall(r'href="/coach/anvandare/(\d+)"', home)):
            coach_pages.append(f"/coach/anvandare/{user_id}")
            if len(coach_pages) >= 4:
                break
        for page in list(coach_pages[1:]):
            shared = re.search(r'href="(/coach/anvandare/\d+/texter/\d+)"', coach.get(page).text)
            if shared:
                coach_pages.append(shared.group(1))
        out.append(("coach", coach, coach_pages))
        return out

    @staticmethod
    def user_pages(browser: Browser) -> list[str]:
        listing = browser.get("/texter/").text
        text = re.search(r'href="(/texter/\d+)"', listing)
        return [p.replace("{text}", text.group(1)) if text else p
                for p in USER_PAGES if p != "{text}" or text]

    # -- actors --

    def start(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def browse(self, actor: str, browser: Browser, pages: list[str]) -> None:
        rng = random.Random(actor)
        index = rng.randrange(len(pages))
        while not self.stop.is_set():
            page = pages[index % len(pages)]
            index += 1
            if index % len(pages) == 0:
                # A new connection per round of pages: a keep-alive connection stays with one
                # gunicorn worker, and without this each session would stick to one forever.
                browser.close()
            self.rec.hit(actor, page, lambda: browser.get(page))
            self.stop.wait(rng.uniform(0, 2 * self.args.think))

    def exporter(self) -> None:
        while not self.stop.wait(self.args.export_every):
            self.request_export()

    def request_export(self) -> bool:
        """A fresh user logs in and asks for an export through the form, as a browser does."""
        with self.pool_lock:
            if not self.fresh_users:
                return False
            user_id, email = self.fresh_users.pop()
        browser = Browser(self.stack.web_port, client_ip=self.next_ip())
        label = self.rec.label
        login = self.rec.hit("exports", "POST /logga-in", lambda: browser.post_form(
            "/logga-in", {"email": email, "password": self.password}), expected=302)
        if login is None or login.status != 302:
            return False
        response = self.rec.hit("exports", "POST /mina-uppgifter/export", lambda: browser.post_form(
            "/mina-uppgifter/export", {}), expected=302)
        browser.close()
        if response is None or response.status != 302:
            return False
        with self.rec.lock:
            self.rec.actions.append(Action("export", user_id, self.rec.now(), label))
        return True

    def dpo_actor(self) -> None:
        """The DPO reads the queue and the overview, and approves an erasure now and then."""
        rng, index = random.Random("dpo"), 0
        next_approval = self.args.erase_every
        while not self.stop.is_set():
            if self.rec.now() >= next_approval:
                self.approve_erasure()
                next_approval += self.args.erase_every
            page = DPO_PAGES[index % len(DPO_PAGES)]
            index += 1
            with self.dpo_lock:
                self.rec.hit("dpo", page, lambda: self.dpo.get(page))
            self.stop.wait(rng.uniform(0, 4 * self.args.think))

    def approve_erasure(self) -> bool:
        with self.pool_lock:
            if not self.open_erasures:
                return False
            request_id, user_id = self.open_erasures.pop()
        label = self.rec.label
        with self.dpo_lock:
            response = self.rec.hit("dpo", "POST approve", lambda: self.dpo.post_form(
                f"/dso/begaranden/{request_id}/bevilja", {},
                form_page=f"/dso/begaranden/{request_id}"), expected=302)
        if response is None or response.status != 302:
            return False
        with self.rec.lock:
            self.rec.actions.append(Action("erasure", user_id, self.rec.now(), label,
                                           request_id))
        return True

    def supervisor(self) -> None:
        """--supervise: restart a worker or cron process that exited, as systemd's
        Restart=always or a platform's process manager would (each restart is reported)."""
        while not self.stop.wait(1.0):
            for proc in list(self.stack.procs):
                if proc.name == "gunicorn" or proc.alive() or proc.name in self.restarted_from:
                    continue
                self.restarted_from.add(proc.name)
                self.rec.note(f"{proc.name} exited with {proc.popen.returncode}; restarting it "
                              "(--supervise)")
                args = ("--cron",) if proc.name == "cron" else ()
                self.stack.procs.remove(proc)
                self.stack.start_worker(proc.name, *args)
                self.restarted_from.discard(proc.name)

    def sampler(self) -> None:
        while True:
            sample = {f"{name.removesuffix(f'-{pid}')} [{pid}]": rss_kib(pid)
                      for name, pid in self.stack.portal_processes().items()}
            self.rss.append((self.rec.now(), {k: v for k, v in sample.items() if v}))
            if self.stop.wait(SAMPLE_EVERY):
                return

    # -- faults --

    def redis_outage(self) -> dict:
        """Stop the benchmark's Redis for --redis-outage seconds under load."""
        seconds = self.args.redis_outage
        self.rec.note(f"fault: stopping Redis for {seconds:g} s")
        window = Window("redis-down", self.rec.now())
        self.rec.windows.append(window)
        self.rec.label = "redis-down"
        self.stack.redis.stop()
        login = self.try_login()
        export_ok = self.request_export()
        approval_ok = self.approve_erasure()
        time.sleep(max(0.0, window.start + seconds - self.rec.now()))
        self.stack.redis.start()
        window.end = self.rec.now()
        self.rec.label = "steady"
        restarted_at = time.time()
        self.rec.note("fault: Redis is back")
        return {"login": login, "export_taken": export_ok, "approval_taken": approval_ok,
                "redis_back_wall": restarted_at,
                "processes": {p.name: p.alive() for p in self.stack.procs}}

    def try_login(self) -> str:
        """A login while Redis is down: it works (302) or answers a clear Swedish message."""
        with self.pool_lock:
            _, email = self.fresh_users.pop()
        browser = Browser(self.stack.web_port, client_ip=self.next_ip())
        response = self.rec.hit("fault", "POST /logga-in (Redis down)", lambda: browser.post_form(
            "/logga-in", {"email": email, "password": self.password}), expected=302)
        if response is None:
            return "no answer"
        if response.status == 302:
            return "302, logged in"
        swedish = any(hint in response.text for hint in SWEDISH_HINTS)
        return f"{response.status}, {'a Swedish message' if swedish else 'NO Swedish message'}"

    def pg_restart(self) -> dict:
        """`pg_ctl restart -m fast` on the benchmark's cluster under load."""
        gunicorn_before = sorted(self.stack.portal_processes())
        self.rec.note("fault: restarting PostgreSQL (pg_ctl restart -m fast)")
        window = Window("pg-restart", self.rec.now())
        self.rec.windows.append(window)
        started = time.monotonic()
        self.stack.postgres.restart()
        took = time.monotonic() - started
        window.end = self.rec.now()
        back_wall = time.time()
        self.rec.note(f"fault: PostgreSQL accepts connections again after {took:.1f} s")
        self.rec.label = "pg-back"
        export_ok = self.request_export()
        approval_ok = self.approve_erasure()
        self.rec.label = "steady"
        return {"restart_seconds": took, "window": window, "export_taken": export_ok,
                "back_wall": back_wall,
                "approval_taken": approval_ok,
                "same_processes": gunicorn_before == sorted(self.stack.portal_processes())}

    # -- orchestration --

    def run(self) -> dict:
        args = self.args
        self.fresh_users = self.pick_data(args.sessions + 400)
        log(f"{len(self.fresh_users)} fresh users, {len(self.open_erasures)} open erasure requests")
        self.dpo = self.browser(self.creds["dpo_email"], self.creds["dpo_totp_secret"])
        sessions = self.sessions()
        duration = args.minutes * 60
        warmup = max(20.0, duration * 0.2)
        self.rec = Recorder()
        self.rec.notes.append(f"load average at start {load_average()}")
        for actor, browser, pages in sessions:
            self.start(actor, self.browse, actor, browser, pages)
        self.start("exports", self.exporter)
        self.start("dpo", self.dpo_actor)
        self.start("rss", self.sampler)
        if args.supervise:
            self.start("supervisor", self.supervisor)
        log(f"soak: {args.minutes:g} min, {len(sessions)} browsing sessions + exports every "
            f"{args.export_every:g} s + DPO approvals every {args.erase_every:g} s; "
            f"warm-up {warmup:.0f} s")
        faults = {}
        if args.faults:
            self.sleep_until(duration * 0.4)
            faults["redis"] = self.redis_outage()
            self.sleep_until(max(duration * 0.7, self.rec.now() + 20))
            faults["pg"] = self.pg_restart()
        self.sleep_until(duration)
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        self.rec.notes.append(f"load average at the end {load_average()}")
        log("load stopped; waiting for the started exports and erasures to finish")
        outcome = self.drain()
        return {"warmup": warmup, "duration": duration, "faults": faults, "outcome": outcome,
                "sessions": [s[0] for s in sessions]}

    def sleep_until(self, moment: float) -> None:
        while self.rec.now() < moment:
            time.sleep(min(1.0, moment - self.rec.now()))

    def drain(self) -> dict:
        """Wait (bounded) until each export is ready and each erasure pseudonymised."""
        deadline = time.monotonic() + self.args.drain
        while True:
            states = self.action_states()
            pending = [a for a, s in states if s["done"] is None]
            if not pending or time.monotonic() > deadline:
                return {"states": states, "waited_out": bool(pending)}
            time.sleep(5)

    def action_states(self) -> list[tuple[Action, dict]]:
        exports = [a for a in self.rec.actions if a.kind == "export"]
        erasures = [a for a in self.rec.actions if a.kind == "erasure"]
        found: dict[tuple[str, int], dict] = {}
        if exports:
            ids = ",".join(str(a.user_id) for a in exports)
            for row in self.stack.postgres.psql(
                    "SELECT user_id, status, coalesce(extract(epoch FROM finished_at), 0) "
                    f"FROM exports WHERE user_id IN ({ids})").split():
                user_id, status, finished = row.split("|")
                found[("export", int(user_id))] = {
                    "state": status, "finished": float(finished) or None,
                    "done": status if status in ("ready", "failed") else None}
        if erasures:
            ids = ",".join(str(a.user_id) for a in erasures)
            for row in self.stack.postgres.psql(
                    "SELECT c.user_id, c.step, coalesce(extract(epoch FROM c.pseudonymised_at), 0),"
                    " u.status FROM erasure_cases c JOIN users u ON u.id = c.user_id "
                    f"WHERE c.user_id IN ({ids})").split():
                user_id, step, finished, status = row.split("|")
                found[("erasure", int(user_id))] = {
                    "state": f"{step} (account {status})", "finished": float(finished) or None,
                    "done": step if step != "approved" else None}
        missing = {"state": "missing in the database", "finished": None, "done": None}
        return [(a, found.get((a.kind, a.user_id), missing)) for a in self.rec.actions]


# --- the report ---------------------------------------------------------------------------------

def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.0f}"


def traffic_lines(rec: Recorder) -> tuple[list[str], int]:
    """Per page: requests, statuses, p50/p95; and the errors outside the fault windows."""
    by_page: dict[str, list[Hit]] = defaultdict(list)
    for hit in rec.hits:
        by_page[hit.page].append(hit)
    lines = ["| page | requests | statuses | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for page, hits in sorted(by_page.items(), key=lambda kv: -len(kv[1])):
        steady = [h for h in hits if rec.window_of(h) is None]
        statuses = dict(sorted(Counter(h.status for h in hits).items()))
        times = [h.end - h.start for h in steady if h.status == h.expected]
        lines.append(f"| {page} | {len(hits)} | {statuses} | {ms(times, 50)} | "
                     f"{ms(times, 95)} |")
    errors = [h for h in rec.hits if h.status != h.expected and rec.window_of(h) is None]
    if errors:
        lines.append("")
        lines += [f"error outside the fault windows: {h.actor} {h.page} -> {h.status} at "
                  f"{h.start:.1f} s" for h in errors[:20]]
    return lines, len(errors)


def rss_lines(samples: list[tuple[float, dict[str, int]]], warmup: float) -> tuple[list[str], bool]:
    """RSS per process after warm-up, half-way through the rest, and at the end: growth over
    the whole measured span (the target) and over its second half (a leak keeps growing; a
    process that met a bigger page late grows once and stays)."""
    after = next((s for t, s in samples if t >= warmup), samples[0][1] if samples else {})
    end_t = samples[-1][0] if samples else 0.0
    middle = next((s for t, s in samples if t >= (warmup + end_t) / 2), after)
    end = samples[-1][1] if samples else {}
    peak: dict[str, int] = defaultdict(int)
    for _, sample in samples:
        for name, kib in sample.items():
            peak[name] = max(peak[name], kib)
    lines = ["| process | after warm-up MiB | half-way MiB | at the end MiB | growth | "
             "growth in the second half | peak MiB |", "|---|---|---|---|---|---|---|"]
    met = True
    for name in sorted(set(after) | set(end)):
        if name in after and name in end:
            growth = (end[name] - after[name]) / after[name] * 100
            late = ((end[name] - middle[name]) / middle[name] * 100 if name in middle
                    else float("nan"))
            met = met and growth <= RSS_TARGET
            lines.append(f"| {name} | {after[name] / 1024:.1f} | "
                         f"{middle.get(name, 0) / 1024:.1f} | {end[name] / 1024:.1f} | "
                         f"{growth:+.1f} % | {late:+.1f} % | {peak[name] / 1024:.1f} |")
        else:
            when = "started after warm-up" if name in end else "gone before the end"
            lines.append(f"| {name} | {after.get(name, 0) / 1024:.1f} | "
                         f"{middle.get(name, 0) / 1024:.1f} | {end.get(name, 0) / 1024:.1f} | "
                         f"{when} | | {peak[name] / 1024:.1f} |")
    for group in ("gunicorn-worker [", "worker-"):
        before = sum(v for k, v in after.items() if k.startswith(group))
        now = sum(v for k, v in end.items() if k.startswith(group))
        if before:
            lines.append(f"| all {group.strip(' [')} processes | {before / 1024:.1f} | | "
                         f"{now / 1024:.1f} | {(now - before) / before * 100:+.1f} % | | |")
    return lines, met


def rss_csv(samples: list[tuple[float, dict[str, int]]]) -> str:
    """Every RSS sample (KiB), one row per sample, one column per process."""
    names = sorted({name for _, sample in samples for name in sample})
    rows = ["seconds," + ",".join(f'"{n}"' for n in names)]
    rows += [f"{t:.0f}," + ",".join(str(sample.get(n, "")) for n in names)
             for t, sample in samples]
    return "\n".join(rows) + "\n"


def action_lines(soak: Soak, outcome: dict) -> tuple[list[str], bool]:
    lines, all_done = [], not outcome["waited_out"]
    for kind, finished_state in (("export", "ready"), ("erasure", "pseudonymised")):
        states = [(a, s) for a, s in outcome["states"] if a.kind == kind]
        done = Counter(s["done"] or "unfinished" for _, s in states)
        lines.append(f"{kind}s started: {len(states)}; in the database: {dict(done)}")
        for action, state in states:
            if state["done"] != finished_state:
                all_done = False
                lines.append(f"  NOT finished: {kind} of user {action.user_id} "
                             f"({action.label}): {state['state']}")
    return lines, all_done


def fault_lines(soak: Soak, result: dict) -> list[str]:
    faults, rec = result["faults"], soak.rec
    if not faults:
        return []
    states = result["outcome"]["states"]
    lines = ["", "Faults under load:"]
    redis = faults["redis"]
    down = [h for h in rec.hits if rec.window_of(h) == "redis-down"]
    gets = Counter(h.status for h in down if not h.page.startswith("POST"))
    lines.append(f"- Redis stopped {soak.args.redis_outage:g} s: page statuses meanwhile "
                 f"{dict(gets)}; login: {redis['login']}; export request taken: "
                 f"{redis['export_taken']}; DPO approval taken: {redis['approval_taken']}")
    lines.append(f"  processes alive after the outage: {redis['processes']}")
    restarts = [n for n in rec.notes if "(--supervise)" in n]
    if restarts:
        lines += [f"  {n}" for n in restarts]
    lines += completion_lines(states, "redis-down", "taken while Redis was down",
                              redis["redis_back_wall"], "after Redis came back")
    pg = faults["pg"]
    window = pg["window"]
    in_window = [h for h in rec.hits if rec.window_of(h) == "pg-restart"]
    after = [h for h in rec.hits if h.start >= window.end]
    failed_after = [h for h in after if h.status != h.expected]
    last_bad = max((h.end for h in in_window if h.status != h.expected), default=None)
    last_text = "-" if last_bad is None else f"{last_bad - window.start:.1f} s"
    lines.append(f"- PostgreSQL restarted (pg_ctl restart -m fast, {pg['restart_seconds']:.1f} s): "
                 f"statuses while it restarted {dict(Counter(h.status for h in in_window))}; "
                 f"failed answers after it was back: {len(failed_after)}; "
                 f"last failed answer {last_text} after the restart began; "
                 f"same gunicorn and worker processes: "
                 f"{pg['same_processes']}")
    lines += completion_lines(states, "pg-back", "taken right after the restart",
                              pg["back_wall"], "after PostgreSQL was back")
    return lines


def completion_lines(states: list, label: str, taken: str, since: float, event: str) -> list[str]:
    """Per kind of action taken in a fault step: how many completed, and how soon."""
    lines = []
    for kind in ("export", "erasure"):
        mine = [s for a, s in states if a.label == label and a.kind == kind]
        if not mine:
            lines.append(f"  no {kind} {taken}")
            continue
        done = [s for s in mine if s["done"] in ("ready", "pseudonymised")]
        latest = max((s["finished"] for s in done if s["finished"]), default=None)
        when = f", the last {latest - since:.0f} s {event}" if latest else ""
        verdict = "yes" if len(done) == len(mine) else "NO"
        unfinished = Counter(s["state"] for s in mine if s not in done)
        lines.append(f"  {kind}s {taken} completed: {verdict} ({len(done)} of {len(mine)}"
                     f"{when}){' unfinished: ' + str(dict(unfinished)) if unfinished else ''}")
    return lines


def log_problems(stack: Stack) -> list[str]:
    """Errors the processes logged (job failures, unhandled exceptions)."""
    lines = []
    for proc in stack.procs:
        text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
        failed_jobs = len(re.findall(r"job \S+ \(\S+\) failed: ", text))
        unhandled = text.count("unhandled error on")
        tracebacks = text.count("Traceback (most recent call last)")
        if failed_jobs or unhandled or tracebacks:
            lines.append(f"{proc.name} log (fault windows included): {failed_jobs} failed jobs, "
                         f"{unhandled} unhandled request errors, {tracebacks} tracebacks "
                         f"({proc.log_path})")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load (10)")
    parser.add_argument("--faults", action="store_true", help="Redis outage and PG restart")
    parser.add_argument("--redis-outage", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--sessions", type=int, default=4, help="ordinary users browsing (4)")
    parser.add_argument("--think", type=float, default=0.3, help="mean think time, s (0.3)")
    parser.add_argument("--export-every", type=float, default=20.0, help="seconds (20)")
    parser.add_argument("--erase-every", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--drain", type=float, default=300.0,
                        help="longest wait at the end for exports and erasures (300 s)")
    parser.add_argument("--workers", type=int, default=2, help="python worker.py processes (2)")
    parser.add_argument("--supervise", action="store_true",
                        help="restart a worker or cron process that exits (as systemd would)")
    add_stack_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with Stack(users=args.users, seed=args.seed, workers=args.workers, cron=True,
               reseed=args.reseed, web_concurrency=args.web_concurrency) as stack:
        soak = Soak(stack, args)
        result = soak.run()
        traffic, errors = traffic_lines(soak.rec)
        rss, rss_met = rss_lines(soak.rss, result["warmup"])
        actions, all_done = action_lines(soak, result["outcome"])
        problems = log_problems(stack)
    lines = [f"Soak {time.strftime('%Y-%m-%d %H:%M')}: {args.minutes:g} min, {args.workers} "
             f"workers + cron, sessions {', '.join(result['sessions'])} + exports + DPO; "
             f"{len(soak.rec.hits)} requests; "
             + "; ".join(soak.rec.notes[:1] + soak.rec.notes[-1:]),
             "", *traffic, "", *rss, "", *actions, *fault_lines(soak, result),
             "", *(problems or ["no failed jobs or unhandled errors in the logs"]), "",
             f"target zero errors outside the fault windows: {errors} "
             f"{'met' if errors == 0 else 'MISSED'}",
             f"target RSS growth <= {RSS_TARGET:g} % after warm-up ({result['warmup']:.0f} s): "
             f"{'met' if rss_met else 'MISSED'}",
             f"target every export and erasure step finished: {'met' if all_done else 'MISSED'}"]
    if args.faults:
        lines += ["", "Fault timeline:", *soak.rec.notes[1:-1]]
    print("\n".join(lines))
    out = BENCH_DIR / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = f"{'soak-faults' if args.faults else 'soak'}-{time.strftime('%Y%m%d-%H%M%S')}"
    (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (out / f"{name}-rss.csv").write_text(rss_csv(soak.rss))
    return 0 if "MISSED" not in "\n".join(lines) else 1


if __name__ == "__main__":
    sys.exit(main())
