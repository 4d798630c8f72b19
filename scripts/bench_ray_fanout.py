"""Ray reference for `splai bench fanout`: the same DAG (split -> WIDTH regex maps -> merge) with
the same text per job, as Ray tasks on a local cluster of this machine's cores. Prints the same
two lines as the SPLAI bench: one job alone (median of RUNS, submit -> result in hand) and JOBS
jobs submitted at once by CLIENTS threads (jobs/s)."""

import argparse
import re
import statistics
import threading
import time

import ray


def job_text(n, width):
    return "\n".join(f"ticket {n}-{i}: login fails on node {i}" for i in range(width))


@ray.remote
def split(text):
    return text.split("\n")


@ray.remote
def regex(chunks, i):
    return re.findall(r"ticket ([0-9-]+): login", chunks[i])


@ray.remote
def merge(*parts):
    return sorted(m for p in parts for m in p)


def run_job(n, width):
    chunks = split.remote(job_text(n, width))
    maps = [regex.remote(chunks, i) for i in range(width)]
    return merge.remote(*maps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--clients", type=int, default=8)
    a = ap.parse_args()
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.get(run_job(0, a.width))  # warm-up: workers started
    alone = []
    for n in range(1, a.runs + 1):
        t = time.perf_counter()
        out = ray.get(run_job(n, a.width))
        alone.append((time.perf_counter() - t) * 1000)
        assert len(out) == a.width
    alone.sort()
    p90 = alone[round((len(alone) - 1) * 0.9)]
    print(f"one job alone: median_ms={statistics.median(alone):.1f} p90_ms={p90:.1f} min_ms={alone[0]:.1f} "
          f"(submit -> result, {a.runs} runs)")
    per_client = -(-a.jobs // a.clients)
    first = a.runs + 1
    errors = []

    def client(c):
        try:
            start = first + c * per_client
            count = max(0, min(per_client, a.jobs - c * per_client))
            refs = [run_job(n, a.width) for n in range(start, start + count)]
            for out in ray.get(refs):
                assert len(out) == a.width
        except Exception as e:  # reported below, so a failure is never a fast result
            errors.append(e)

    t = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    if errors:
        raise SystemExit(f"ray jobs failed: {errors[0]}")
    print(f"{a.jobs} jobs at once from {a.clients} clients: jobs_per_s={a.jobs / wall:.1f} wall_s={wall:.2f} "
          f"tasks_per_s={a.jobs * (a.width + 2) / wall:.0f}")


if __name__ == "__main__":
    main()
