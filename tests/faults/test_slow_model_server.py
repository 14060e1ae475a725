"""The model server stops answering (SIGSTOP: connections stay open, every Predict runs into its deadline) while a
class is publishing: the classifier retries with backoff instead of dead-lettering or crashing, its consumer lag
shows in classpulse_consumer_lag, its memory stays bounded, and after SIGCONT it catches up with nothing lost."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from classpulse_core.timeseries import FRAMES
from classpulse_reliability.drills import Publisher
from classpulse_reliability.scrape import consumer_lag, scrape, total
from classpulse_reliability.workload import Workload, class_totals, register_class

pytestmark = pytest.mark.faults

FROZEN_S = 25.0
"""Five Predict deadlines (5 s each): several retries, with the backoff growing between them."""
MIB = 1024 * 1024


def test_a_frozen_model_server_means_retries_and_lag_then_a_full_catch_up(isolated_stack, drill_workload):
    frames = len(Workload.load(drill_workload).jpegs)
    classifier = isolated_stack.url("classifier")
    class_id = f"frozen-{uuid.uuid4().hex[:8]}"
    register_class(isolated_stack.url("api"), isolated_stack.admin_key(), class_id, 6)
    retries_before = total(scrape(classifier), "classpulse_dependency_retries_total", dependency="model_server")
    dead_before = total(scrape(classifier), "classpulse_dead_letters_total")
    rss_before = isolated_stack.rss_bytes("classifier")

    publisher = Publisher(isolated_stack, drill_workload, class_id, rate=4.0)
    publisher.start()
    time.sleep(2.0)
    isolated_stack.kill("model-server", signal.SIGSTOP)
    lags, rss = [], []
    try:
        frozen_until = time.monotonic() + FROZEN_S
        while time.monotonic() < frozen_until:
            lags.append(consumer_lag(classifier))
            rss.append(isolated_stack.rss_bytes("classifier"))
            time.sleep(1.0)
    finally:
        isolated_stack.kill("model-server", signal.SIGCONT)
    resumed = time.monotonic()
    publisher.wait(timeout_s=60)
    client = isolated_stack.redis()
    while class_totals(client, class_id)[FRAMES] < frames or consumer_lag(classifier) > 0:
        assert time.monotonic() - resumed < 90, f"not caught up 90 s after the model server resumed: lag {consumer_lag(classifier)}"
        time.sleep(1.0)
    caught_up_s = time.monotonic() - resumed

    metrics = scrape(classifier)
    assert max(lags) > 0, "lag never showed while the model server was frozen"
    assert total(metrics, "classpulse_dependency_retries_total", dependency="model_server") - retries_before >= 2
    assert total(metrics, "classpulse_dead_letters_total") == dead_before, "a slow dependency is not a poison message"
    assert class_totals(client, class_id)[FRAMES] == frames
    # Bounded memory: the classifier holds one batch and retries it; nothing piles up while the model is away.
    assert max(rss) - rss_before < 64 * MIB, (rss_before, max(rss))
    print(f"\nmodel server frozen {FROZEN_S:.0f} s: classifier lag peaked at {max(lags):.0f} messages, "
          f"RSS {rss_before / MIB:.0f} -> {max(rss) / MIB:.0f} MiB, caught up {caught_up_s:.1f} s after it resumed")
