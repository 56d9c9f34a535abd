"""Python joblib on the workloads of joblib for Rust's benchmarks.

Prints one JSON object per line: {"group", "name", "median_s", "runs", "note"}.
`cargo xtask bench` runs it next to the criterion benchmarks and puts the
medians side by side in docs/benchmarks.md. Run it alone with

    python3 benches/python/joblib_baseline.py [GROUP ...]

where GROUP is any of: hash persist memory parallel (default: all).
Needs `pip install joblib numpy`; the lz4 case also needs `lz4` and is
skipped without it (`cargo xtask bench` installs all three when missing).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import joblib
import numpy as np


def median_time(fn, runs, setup=None):
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(group, name, seconds, runs, note=""):
    print(json.dumps({"group": group, "name": name, "median_s": seconds, "runs": runs, "note": note}), flush=True)


def bench_hash():
    a = np.sin(np.arange(25_000_000, dtype=np.float64))
    report("hash", "200 MB float64 array", median_time(lambda: joblib.hash(a), 5), 5, "md5 over the buffer")
    d = {f"key-{i}": i for i in range(100_000)}
    report("hash", "dict of 100k str -> int", median_time(lambda: joblib.hash(d), 5), 5)


# (method, level, megabytes): the slow codecs get less data, so the group
# stays within a few minutes; throughput is comparable across sizes.
PERSIST_CASES = [
    (None, None, 200),
    ("lz4", 3, 200),
    ("zlib", 3, 50),
    ("gzip", 3, 50),
    ("bz2", 3, 20),
    ("xz", 3, 10),
    ("lzma", 3, 10),
]


def bench_persist():
    folder = tempfile.mkdtemp(prefix="joblib-baseline-")
    try:
        for method, level, mb in PERSIST_CASES:
            n = mb * 1_000_000 // 8
            # As in benches/benches/persist.rs: a sine signal uncompressed,
            # arange (compressible) for the compressors.
            if method is None:
                data = np.sin(np.arange(n, dtype=np.float64) * 1e-4)
            else:
                data = np.arange(n, dtype=np.float64)
            path = os.path.join(folder, "data.pkl")
            compress = 0 if method is None else (method, level)
            label = "none" if method is None else f"{method}-{level}"
            runs = 3 if mb >= 50 else 2
            try:
                joblib.dump(data[:10], path, compress=compress)
            except (ValueError, ImportError) as err:
                # A codec whose Python module is missing (lz4 needs `pip install lz4`).
                report("persist", f"dump {label}", None, 0, f"skipped: {err}")
                continue
            dump_s = median_time(lambda: joblib.dump(data, path, compress=compress), runs)
            size = os.path.getsize(path)
            load_s = median_time(lambda: joblib.load(path), runs)
            note = f"{mb} MB, {mb / dump_s:.0f} MB/s dump, {mb / load_s:.0f} MB/s load, ratio {n * 8 / size:.2f}"
            report("persist", f"dump {label}", dump_s, runs, note)
            report("persist", f"load {label}", load_s, runs, note)
        big = np.arange(1_000_000_000 // 8, dtype=np.float64)
        path = os.path.join(folder, "big.pkl")
        joblib.dump(big, path)
        del big
        report("persist", "load mmap 1 GB", median_time(lambda: joblib.load(path, mmap_mode="r"), 20), 20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_memory():
    folder = tempfile.mkdtemp(prefix="joblib-baseline-memory-")
    try:
        memory = joblib.Memory(folder, verbose=0)

        def small(x):
            return x + 1

        def big(a):
            return float(a.sum())

        cached_small = memory.cache(small)
        cached_big = memory.cache(big)
        cached_small(1)
        report("memory", "hit, one int argument", median_time(lambda: cached_small(1), 200), 200)
        arr = np.random.default_rng(0).random(10_000_000 // 8)
        cached_big(arr)
        report("memory", "hit, 10 MB array argument", median_time(lambda: cached_big(arr), 30), 30)
        counter = iter(range(10**9))
        report("memory", "miss, one int argument", median_time(lambda: cached_small(next(counter) + 10), 100), 100, "includes the function's own negligible time")
        for i in range(1000):
            cached_small(10**6 + i)

        def reduce():
            memory.reduce_size(bytes_limit=1)

        report("memory", "reduce_size over ~1000 entries", median_time(reduce, 1), 1, "evicts everything")

        # Many distinct entries (the Rust `memory/many/*` benches): 10,000
        # small results, then a pass of first hits in a new Memory (as a
        # re-run of a pipeline pays), a pass of later hits, and misses.
        many_folder = os.path.join(folder, "many")

        def many(x):
            return [x] * 4

        first = joblib.Memory(many_folder, verbose=0).cache(many)
        for x in range(10_000):
            first(x)
        rerun = joblib.Memory(many_folder, verbose=0).cache(many)

        def one_pass(f):
            start = time.perf_counter()
            for x in range(10_000):
                f(x)
            return (time.perf_counter() - start) / 10_000

        report("memory", "hit over 10,000 distinct entries, first hit of each", one_pass(rerun), 10_000, "mean over one pass")
        report("memory", "hit over 10,000 distinct entries, later hits", one_pass(rerun), 10_000, "mean over one pass")
        fresh = iter(range(10**6, 10**9))
        report("memory", "miss over distinct arguments", median_time(lambda: rerun(next(fresh)), 200), 200)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def trivial(x):
    return x


def spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x


def total(a):
    return float(a.sum())


def bench_parallel():
    from joblib import Parallel, delayed

    for backend in ("loky", "threading"):
        with Parallel(n_jobs=2, backend=backend) as p:
            p(delayed(trivial)(i) for i in range(100))  # warm the pool
            t = median_time(lambda: p(delayed(trivial)(i) for i in range(10_000)), 5)
        report("parallel", f"10k trivial tasks, {backend}, warm", t, 5)
    with Parallel(n_jobs=2, backend="loky") as p:
        p(delayed(trivial)(i) for i in range(10))
        t1 = median_time(lambda: Parallel(n_jobs=1)(delayed(spin)(0.25) for _ in range(8)), 1)
        t2 = median_time(lambda: p(delayed(spin)(0.25) for _ in range(8)), 2)
    report("parallel", "8 x 0.25 s CPU tasks, n_jobs=1", t1, 1)
    report("parallel", "8 x 0.25 s CPU tasks, loky n_jobs=2", t2, 2, f"speedup {t1 / t2:.2f}x")
    a = np.ones((12_500_000 // 1000, 1000))  # 100 MB
    with Parallel(n_jobs=2, backend="loky") as p:
        p(delayed(total)(a) for _ in range(4))
        t = median_time(lambda: p(delayed(total)(a) for _ in range(4)), 5)
    report("parallel", "100 MB array to 4 tasks, loky (memmapped)", t, 5)
    # A cold start needs a fresh interpreter: loky keeps its workers for the
    # life of the process. Timed inside the child, after its imports.
    import subprocess

    child = (
        "import time; from joblib import Parallel, delayed\n"
        "t = time.perf_counter()\n"
        "Parallel(n_jobs=2, backend='loky')(delayed(abs)(-1) for _ in range(1))\n"
        "print(time.perf_counter() - t)\n"
    )
    colds = [float(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout) for _ in range(3)]
    report("parallel", "cold pool of 2 workers, one task, loky", statistics.median(colds), 3, "fresh interpreter, timed after imports")
    bench_process_transfers()


def one_mib(seed):
    return np.arange(131_072, dtype=np.float64) + seed


def bench_process_transfers():
    """Fresh arrays and large results across loky's processes: the
    `process_array_100MB_4_tasks/processes_shared_first_call`,
    `process_array_100MB_by_value_4_tasks` and `process_results_64x1MB`
    benches of benches/benches/processes.rs."""
    from joblib import Parallel, delayed

    a = np.ones((12_500_000 // 1000, 1000))  # 100 MB
    with Parallel(n_jobs=2, backend="loky") as p:
        p(delayed(total)(a) for _ in range(4))
        fresh = {}

        def new_array():
            fresh["a"] = a.copy()

        # A new array each call: loky hashes it, writes it to its folder
        # once, and the 4 tasks map it.
        t = median_time(lambda: p(delayed(total)(fresh["a"]) for _ in range(4)), 5, setup=new_array)
        report("parallel", "new 100 MB array each call to 4 tasks, loky", t, 5)

        def copies():
            fresh["c"] = [a.copy() for _ in range(4)]

        # The same content passed as 4 distinct arrays (one per task).
        t = median_time(lambda: p(delayed(total)(c) for c in fresh["c"]), 5, setup=copies)
        report("parallel", "100 MB array by value to 4 tasks (4 copies), loky", t, 5)
        p(delayed(one_mib)(i) for i in range(4))
        t = median_time(lambda: p(delayed(one_mib)(i) for i in range(64)), 5)
        report("parallel", "64 tasks returning 1 MiB each, loky", t, 5)


def bench_python_load():
    # As python_load in benches/benches/persist.rs: a 200 MiB sine signal,
    # 1000 columns, dumped uncompressed; joblib.load of it, and a mapped load.
    folder = tempfile.mkdtemp(prefix="joblib-baseline-")
    try:
        cols = 1000
        rows = (200 << 20) // 8 // cols
        a = np.sin(np.arange(rows * cols, dtype=np.float64) * 1e-4).reshape(rows, cols)
        path = os.path.join(folder, "a.pkl")
        joblib.dump(a, path)
        del a
        report("python_load", "joblib.load 200 MB float64", median_time(lambda: joblib.load(path), 5), 5)
        report("python_load", "joblib.load mmap_mode=r 200 MB float64", median_time(lambda: joblib.load(path, mmap_mode="r"), 20), 20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


GROUPS = {
    "hash": bench_hash,
    "persist": bench_persist,
    "memory": bench_memory,
    "parallel": bench_parallel,
    "python_load": bench_python_load,
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(GROUPS)
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        sys.exit(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    print(json.dumps({"group": "meta", "name": "versions", "joblib": joblib.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}), flush=True)
    for g in chosen:
        GROUPS[g]()
