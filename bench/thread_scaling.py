"""Thread scaling of one training epoch of the study's two models, and a determinism check.

For each model and thread count: one epoch from the same seed (its weights must be bitwise the same
for every thread count), then the fastest and median of ``--repeats`` further epochs (no validation).
Prints a Markdown table; exits with status 1 when some thread count gave different weights.
``--profile`` adds, per model and thread count, where one more epoch's time went on each thread
(pyreg.profiling: microseconds per step and phase).

    python bench/thread_scaling.py --threads 1 2 4 8 16 [--npz mnist.npz] [--profile]

``--npz``: an MNIST ``.npz`` (keras' keys) for machines without pyreg's cache or a registry.
"""

import argparse
import hashlib
import os
import sys
import time

import numpy as np

import pyreg
from pyreg import models
from pyreg.datasets import mnist
from pyreg.profiling import format_profile, profile_fit
from pyreg.study.definition import build_pyreg, scale_images


def weights_digest(m: models.Sequential) -> str:
    return hashlib.sha256(b"".join(w.tobytes() for w in m.get_weights())).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)"
    )
    ap.add_argument(
        "--repeats", type=int, default=5, help="timed epochs per model and thread count"
    )
    ap.add_argument("--npz", default=None, help="MNIST .npz to read instead of pyreg's cache")
    ap.add_argument(
        "--profile", action="store_true", help="also print each thread's phases (us per step)"
    )
    args = ap.parse_args()
    if any(t < 1 for t in args.threads) or args.repeats < 1:
        ap.error("--threads and --repeats must be positive")

    (x, y), _ = mnist.load_data(args.npz)
    x = scale_images(x)  # (60000, 28, 28) float32
    info = pyreg.build_info()
    print(
        f"{info['cpu']}, {os.cpu_count()} cores, kernels {info['isa_active']}, python {info['python']}\n"
    )
    print(
        "| model | threads | epoch, fastest (ms) | median (ms) | vs 1st count | weights after one epoch |"
    )
    print("|---|---|---|---|---|---|")
    same = True
    profiles = []
    for kind in ("l2", "dropout"):
        first_digest, first_time = None, None
        for t in args.threads:
            m = build_pyreg(kind, seed=0)
            m.fit(x, y, epochs=1, verbose=0, threads=t)
            digest = weights_digest(m)
            first_digest = first_digest or digest
            same &= digest == first_digest
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                m.fit(x, y, epochs=1, verbose=0, threads=t)
                times.append(time.perf_counter() - t0)
            fastest, median = min(times), float(np.median(times))
            first_time = first_time or fastest
            verdict = "same" if digest == first_digest else "DIFFERENT"
            print(
                f"| {kind} | {t} | {fastest * 1e3:.1f} | {median * 1e3:.1f} | {first_time / fastest:.2f}x | "
                f"{digest} {verdict} |",
                flush=True,
            )
            if args.profile:  # one more epoch, after the timed ones
                profiles.append((kind, t, format_profile(profile_fit(m, x, y, threads=t))))
    for kind, t, table in profiles:
        print(f"\n{kind} model, {t} thread(s):\n\n{table}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
