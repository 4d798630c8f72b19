#!/usr/bin/env python3
"""Scale-out on real inference: the same batch of batch_analysis jobs on `splai up` with k
executors (k = 1, 2, ...), throughput and speed-up over k = 1, and CPU utilization of the whole
machine sampled from /proc/stat over each run's window.

Usage: scripts/bench-scale.py [--jobs N] [--executors 1,2] [--threads T] [--binary target/release/splai]
(--threads 1 gives every attempt one core: the single-executor baseline uses one core, k
executors k cores; the default shares the cores out, so one executor already uses them all.)
"""
import argparse, json, os, shutil, subprocess, tempfile, time, urllib.request

def cpu_times():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts), idle

def call(url, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())

def run(binary, k, jobs, request, threads):
    data = tempfile.mkdtemp(prefix="splai-scale-")
    port = 18400 + k
    up = subprocess.Popen([binary, "--set", f"log.embedded.path={data}/log.sqlite", "--set", f"store.url=sqlite://{data}/s.sqlite",
                           "--set", f"artifacts.url=file://{data}/a", "--set", f"gateway.listen=127.0.0.1:{port}",
                           "--set", f"executor.inference_threads={threads}",
                           "up", "--executors", str(k)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                w = call(url, "/v1/workers")["workers"]
                if len([x for x in w if x["live"]]) >= k and call(url, "/readyz")["ready"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        # Warm the models once so every run measures steady state.
        warm = call(url, "/v1/jobs", {"type": "chat", "input": {"prompt": "hi", "max_tokens": 2}})["job_id"]
        while call(url, f"/v1/jobs/{warm}")["state"] not in ("succeeded", "failed"):
            time.sleep(0.2)
        total0, idle0 = cpu_times()
        start = time.time()
        ids = [call(url, "/v1/jobs", request)["job_id"] for _ in range(jobs)]
        while True:
            states = [call(url, f"/v1/jobs/{i}")["state"] for i in ids]
            if all(s in ("succeeded", "failed", "cancelled") for s in states):
                break
            time.sleep(0.5)
        wall = time.time() - start
        total1, idle1 = cpu_times()
        busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
        return {"executors": k, "threads_per_attempt": threads or "auto", "jobs": jobs, "succeeded": states.count("succeeded"), "wall_s": round(wall, 1),
                "jobs_per_min": round(60 * jobs / wall, 2), "cpu_utilization": round(busy, 3)}
    finally:
        up.terminate()
        up.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--executors", default="1,2")
    p.add_argument("--binary", default="target/release/splai")
    p.add_argument("--threads", type=int, default=0, help="inference threads per attempt (0: cores / executors)")
    a = p.parse_args()
    request = json.load(open("examples/support-tickets.json"))
    request["input"]["max_tokens"] = 48
    rows = [run(a.binary, int(k), a.jobs, request, a.threads) for k in a.executors.split(",")]
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup"] = round(base / r["wall_s"], 2)
        print(json.dumps(r))

if __name__ == "__main__":
    main()
