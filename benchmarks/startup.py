"""Time to first image in a fresh process: the first `kpixel sample` against a second one that finds
the sampler in XLA's persistent cache (`cli/xla_cache.py`), in one run.

    python benchmarks/startup.py [--num 16] [--pretrained fashion_mnist] [--runs 2]

Each run is a new `kpixel --verbose sample --pretrained NAME --num N` process with
XDG_CACHE_HOME set to the same new, empty directory (and TF_XLA_FLAGS unset, so `kpixel` sets
the cache up), so the first compiles and the later ones load. For each process it prints:

- wall: the whole process, from start to exit;
- wait: the `Compiling the sampler (first use) and drawing the first batch ... done in T s` line,
  i.e. tracing the `tf.function`, TensorFlow's graph-to-XLA bridge, XLA, and the first batch;
- compile: from TensorFlow's `disabling MLIR crash reproducer` log line, printed when XLA is
  handed the program, to `Compiled cluster using XLA!`, printed once it holds an executable:
  XLA compiling the program, or loading it from the cache. Taken from the timestamps of
  TensorFlow's own log lines (`--verbose` shows them); "n/a" when this TensorFlow prints neither.

and the ratios of the second process to the first. The images must be equal.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

_STAMP = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:(\d+\.\d+) ")


def _stamp(lines, text):
    for line in lines:
        match = _STAMP.match(line)
        if match and text in line:
            return float(match.group(1))
    return None


def _run(kpixel, cache_home, out, name, num):
    env = dict(os.environ, XDG_CACHE_HOME=cache_home)
    env.pop("TF_XLA_FLAGS", None)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    start = time.perf_counter()
    result = subprocess.run([kpixel, "--verbose", "sample", "--pretrained", name, "--num", str(num), "--out",
                             out + ".png", "--npy", out + ".npy"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    lines = result.stderr.splitlines()
    wait = re.search(r"drawing the first batch \.\.\..*?done in (\d+\.\d+) s", result.stderr, re.S)
    begin, end = _stamp(lines, "disabling MLIR crash reproducer"), _stamp(lines, "Compiled cluster using XLA")
    compile_s = end - begin if begin is not None and end is not None else None
    return {"wall": wall, "wait": float(wait.group(1)) if wait else None, "compile": compile_s,
            "images": np.load(out + ".npy")}


def _seconds(value):
    return "n/a" if value is None else f"{value:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--pretrained", default="fashion_mnist")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    kpixel = os.path.join(os.path.dirname(sys.executable), "kpixel")
    with tempfile.TemporaryDirectory() as scratch:
        cache_home = os.path.join(scratch, "cache")
        runs = [_run(kpixel, cache_home, os.path.join(scratch, f"run{index}"), args.pretrained, args.num)
                for index in range(args.runs)]
        entries = os.listdir(os.path.join(cache_home, "keras-pixelcnn", "xla"))
    print(f"kpixel sample --pretrained {args.pretrained} --num {args.num}, {os.cpu_count()} CPUs, "
          f"cache entries after the runs: {len(entries)}")
    print(f"{'process':>8} {'wall':>9} {'wait':>9} {'compile':>9}")
    for index, run in enumerate(runs):
        print(f"{index + 1:>8} {_seconds(run['wall']):>9} {_seconds(run['wait']):>9} {_seconds(run['compile']):>9}")
    first, second = runs[0], runs[1]
    for key in ("wall", "wait", "compile"):
        if first[key] and second[key] is not None:
            print(f"second / first, {key}: {second[key] / first[key]:.2f}")
    assert all(np.array_equal(run["images"], first["images"]) for run in runs), "the processes drew other images"
    print("images: equal in every process")


if __name__ == "__main__":
    main()
