"""The worker keeps no personal data from failures and preloads what jobs need."""
import subprocess
import sys
import traceback
from pathlib import Path

from worker import sanitise_traceback

ROOT = Path(__file__).resolve().parent.parent


def test_failed_job_traceback_keeps_place_and_type_but_no_message():
    def fail(address):
        raise ValueError(f"could not send to {address}")

    try:
        fail("anna@example.se")
    except ValueError as exc:
        text = "".join(traceback.format_exception(exc))
    cleaned = sanitise_traceback(text)
    assert "anna@example.se" in text and "anna" not in cleaned
    assert "ValueError" in cleaned and "in fail" in cleaned
    assert 'raise ValueError(f"could not send' not in cleaned  # source lines dropped too


def test_worker_preloads_flask_app_and_weasyprint_before_forking():
    code = ("import sys, worker; from portal import create_app; create_app(); "
            "worker.preload_heavy_modules(); "
            "print(all(m in sys.modules for m in ('weasyprint', 'portal.tasks', 'flask')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip().endswith("True"), result.stderr
