"""A process logging predictions and labels under load is SIGKILLed; nothing acknowledged is lost.

The child acknowledges a request id on stdout only after the log said it is on disk.
After the kill, a fresh process recovers the spool and compacts it: every
acknowledged prediction and label is in the log store, and nothing appears twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mloop.config import load_settings
from mloop.journal._compact import compact_stream
from mloop.journal._feedback import FeedbackLog
from mloop.journal._log import PredictionLog
from mloop.journal._logstore import ParquetLogStore

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from mloop.config import load_settings
    from mloop.journal._compact import compact_stream
    from mloop.journal._feedback import FeedbackLog
    from mloop.journal._log import PredictionLog
    from mloop.journal._logstore import ParquetLogStore

    settings = load_settings(env={}, home=sys.argv[1])
    log = PredictionLog(settings)
    log.spool.segment_bytes = 64 * 1024  # roll often so the kill can land anywhere
    labels = FeedbackLog(settings)
    store = ParquetLogStore(settings.home)
    out = threading.Lock()

    def compactor():
        while True:
            compact_stream(store, settings.home / "spool", "predictions")
            compact_stream(store, settings.home / "spool", "feedback")
            time.sleep(0.01)

    def producer(t):
        i = 0
        while True:
            ids = []
            for _ in range(20):
                rid = f"t{t}-{i}"
                i += 1
                log.submit({"request_id": rid, "ts": time.time(), "model": "churn", "version": 1,
                            "inputs": [{"x": 1.0}, {"x": 2.0}],
                            "outputs": [{"label": "a"}, {"label": "b"}],
                            "latency_ms": 1.0, "entity_keys": None})
                ids.append(rid)
            log.flush()
            labels.add([{"request_id": r, "row": 1, "label": "b"} for r in ids[::2]], time.time())
            labels.flush()
            with out:
                sys.stdout.write("".join(f"ack {r}\\n" for r in ids))
                sys.stdout.flush()

    threading.Thread(target=compactor, daemon=True).start()
    for t in range(3):
        threading.Thread(target=producer, args=(t,), daemon=True).start()
    time.sleep(120)
    """
)


def test_sigkill_under_load_loses_no_acknowledged_record_and_duplicates_none(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[str] = []
    deadline = time.monotonic() + 60
    assert child.stdout is not None
    while len(acked) < 3000 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        if line.startswith("ack "):
            acked.append(line.split()[1])
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    # lines the child wrote before dying are acknowledgements too
    acked.extend(line.split()[1] for line in child.stdout if line.startswith("ack "))
    child.stdout.close()
    assert child.stderr is not None
    errors = child.stderr.read()
    child.stderr.close()
    assert len(acked) >= 3000, errors

    settings = load_settings(env={}, home=home)
    PredictionLog(settings).close()  # a restart recovers the spool (truncates a torn tail)
    FeedbackLog(settings).close()
    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "predictions")
    compact_stream(store, settings.home / "spool", "feedback")

    predictions = store.predictions("churn", 0, 4e9)
    assert not predictions.duplicated(["request_id", "row"]).any()
    stored = set(predictions["request_id"])
    assert set(acked) <= stored
    feedback = store.feedback(0)
    assert not feedback.duplicated(["request_id", "row"]).any()
    expected_labels = {r for r in acked if int(r.split("-")[1]) % 2 == 0}
    assert expected_labels <= set(feedback["request_id"])
