"""NLU latency: Rasa over HTTP (through the bot's client) vs the in-app fallback, p50/p99 side by side.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_nlu [--rounds 3]

Messages are the held-out set (nlu/eval/heldout.yml: short chat to 400-character chain messages),
classified one at a time as the bot does. Rasa is the running server at RASA_URL, else a temporary one
started on a free loopback port from the cached model (trained if missing). Both sides warm up first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nlu import rasa_service  # noqa: E402
from nlu.client import NluClient  # noqa: E402
from nlu.fallback import get_fallback  # noqa: E402
from nlu.settings import get_settings  # noqa: E402
from nlu.training_data import load  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(fn: Callable[[str], object], texts: list[str], rounds: int) -> list[float]:
    """Milliseconds per call, after one warm-up pass over a few texts."""
    for text in texts[:10]:
        fn(text)
    out = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            fn(text)
            out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the held-out messages")
    args = parser.parse_args()
    settings = get_settings()
    texts = [t for t, _ in load(settings.heldout_file).examples]
    results: dict[str, dict] = {}

    fallback = get_fallback()
    results["fallback (in-process)"] = summary(timed(fallback.parse, texts, args.rounds))

    with ExitStack() as stack:
        url = settings.rasa_url
        if not rasa_service.is_up(url, settings.token()):
            server = rasa_service.serve(rasa_service.train(settings), settings, port=rasa_service.free_port())
            stack.callback(server.stop)
            url = server.url
        client = NluClient(settings.model_copy(update={"rasa_url": url, "timeout_s": 5.0}))
        rasa_ms = timed(client.parse_sync, texts, args.rounds)
        if any(client.parse_sync(t).source != "rasa" for t in texts[:5]):
            raise SystemExit("Rasa answers fell back during the benchmark: figures would be mixed")
        results["rasa (HTTP via NluClient)"] = summary(rasa_ms)

    print(f"NLU latency, {len(texts)} held-out messages x {args.rounds} rounds, one at a time")
    print(f"{'classifier':30} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, s in results.items():
        print(f"{name:30} {s['n']:>5} {s['p50_ms']:>8} {s['p90_ms']:>8} {s['p99_ms']:>8} {s['mean_ms']:>8}")
    out = Path("bench/results/nlu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"at": datetime.now(UTC).isoformat(), "loadavg": os.getloadavg(), **results}
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
