"""The model repository under load, on the ASan+UBSan+LSan daemon: clients
hammer one model while another is loaded and unloaded in a loop and SIGHUP
reloads everything every 100 ms. The hammered model never fails a request,
every repository answer is 200 or 409 (a load already running), SIGHUPs
that arrive during a load are ignored and logged, and the daemon exits 0
without a sanitizer report.

  STRESS_SECONDS  how long (default 8)."""
import os
import re
import signal
import threading
import time

import pytest

from stresslib import (CLASSIFIER_DIR, NEWSREC_DIR, ROOT, STRESS_SECONDS, itc, post, report,
                       request)

ASAN_DAEMON = os.environ.get("FASTFORMERD_ASAN", os.path.join(ROOT, "build", "asan",
                                                              "fastformerd"))
MODELS = [{"name": "steady", "path": CLASSIFIER_DIR}, {"name": "churn", "path": NEWSREC_DIR}]


def test_repository_churn_with_sighup_and_traffic(start_daemon, monkeypatch):
    if not os.path.exists(ASAN_DAEMON):
        pytest.skip(f"{ASAN_DAEMON} missing: make VARIANT=asan {ASAN_DAEMON}")
    monkeypatch.setattr(itc, "DAEMON", ASAN_DAEMON)
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "LSAN_OPTIONS": "exitcode=23",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    d = start_daemon(models=MODELS, server={"model_control": "true"}, env=env)
    stop = threading.Event()
    steady, repo, lock = [], [], threading.Lock()

    def hammer():
        while not stop.is_set():
            a = post(d.port, "/v1/models/steady/classify", {"inputs": ["a fine film"]})
            with lock:
                steady.append(a.status)

    def churn():
        while not stop.is_set():
            for what in ("load", "unload"):
                a = request(d.port, "POST", f"/v2/repository/models/churn/{what}", b"")
                with lock:
                    repo.append((what, a.status))

    def hup():
        n = 0
        while not stop.is_set():
            d.proc.send_signal(signal.SIGHUP)
            n += 1
            time.sleep(0.1)
        return n

    threads = [threading.Thread(target=hammer) for _ in range(3)] + [threading.Thread(target=churn)]
    for t in threads:
        t.start()
    hup_thread = threading.Thread(target=hup)
    hup_thread.start()
    time.sleep(STRESS_SECONDS)
    stop.set()
    for t in threads + [hup_thread]:
        t.join()
    # after the storm: one quiet load serves the model again
    deadline = time.monotonic() + 30
    while request(d.port, "POST", "/v2/repository/models/churn/load", b"").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert post(d.port, "/v1/models/churn/embed", {"inputs": ["oil"]}).status == 200
    rc = d.stop(timeout=120)
    log = d.log()
    errors = re.findall(r"(ERROR: (?:Address|Leak)Sanitizer.*|runtime error:.*)", log)
    statuses = {}
    for what, s in repo:
        statuses[f"{what}_{s}"] = statuses.get(f"{what}_{s}", 0) + 1
    report("repository", seconds=STRESS_SECONDS, steady_requests=len(steady),
           steady_failed=sum(s != 200 for s in steady), **statuses,
           sighup_ignored=log.count("SIGHUP ignored"), exit_code=rc, sanitizer_errors=len(errors))
    assert not errors, "\n".join(errors[:10]) + "\n" + log[-5000:]
    assert rc == 0, log[-5000:]
    assert steady and all(s == 200 for s in steady), sorted(set(steady))
    assert repo and {s for _, s in repo} <= {200, 409}, sorted({s for _, s in repo})
    assert any(s == 200 for what, s in repo if what == "load")
