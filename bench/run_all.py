"""Run every benchmark in turn (`make bench`), each in its own process so one's memory never skews another."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    "bench.bench_search",
    "bench.bench_matching",
    "bench.bench_message_path",
    "bench.bench_nlu",
    "bench.bench_webhook",
    "bench.bench_digest",
    "bench.bench_scale",
]


def main() -> int:
    failed = []
    for module in BENCHES:
        print(f"\n===== {module} =====", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
