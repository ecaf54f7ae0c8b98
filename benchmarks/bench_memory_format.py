"""Memory format of image estimators: contiguous (NCHW) vs channels_last (NHWC).

Times one training epoch and one prediction pass of ``ImageClassifier('cnn')``
on random 28 x 28 images, for both memory formats, alternating the order in
each repeat; reports medians and the ratio channels_last / contiguous, on
the CPU and, when there is one, on CUDA (there also with 'bf16-mixed').
Writes ``benchmarks/memory_format.md``.

Run: ``python benchmarks/bench_memory_format.py [repeats]``.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sktorch import ImageClassifier

N_IMAGES = 4096
SIZE = 28


def time_once(memory_format: str, device: str, precision: str, X, y) -> tuple[float, float]:
    clf = ImageClassifier(
        "cnn", memory_format=memory_format, device=device, precision=precision,
        max_epochs=1, batch_size=128, random_state=0,
    )
    clf.fit(X[:256], y[:256])  # warm-up: allocations, oneDNN/cuDNN kernel choice
    start = time.perf_counter()
    clf.fit(X, y)
    if device == "cuda":
        torch.cuda.synchronize()
    fit = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict_proba(X)
    predict = time.perf_counter() - start
    return fit, predict


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(N_IMAGES, SIZE, SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=N_IMAGES)
    settings = [("cpu", "32")]
    if torch.cuda.is_available():
        settings += [("cuda", "32"), ("cuda", "bf16-mixed")]
    rows = []
    for device, precision in settings:
        times: dict[str, list[tuple[float, float]]] = {"contiguous": [], "channels_last": []}
        for r in range(repeats):
            order = ["contiguous", "channels_last"] if r % 2 == 0 else ["channels_last", "contiguous"]
            for memory_format in order:
                times[memory_format].append(time_once(memory_format, device, precision, X, y))
        med = {
            fmt: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
            for fmt, v in times.items()
        }
        rows.append((device, precision, med))
        print(device, precision, med, flush=True)

    lines = [
        "# Memory format: contiguous vs channels_last",
        "",
        f"`ImageClassifier('cnn')`, {N_IMAGES:,} random {SIZE} x {SIZE} RGB uint8 images, "
        f"batch 128; median of {repeats} repeats, order alternated. "
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "| device | precision | fit epoch, contiguous (s) | fit epoch, channels_last (s) | ratio "
        "| predict, contiguous (s) | predict, channels_last (s) | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for device, precision, med in rows:
        (fc, pc), (fl, pl) = med["contiguous"], med["channels_last"]
        lines.append(
            f"| {device} | {precision} | {fc:.3f} | {fl:.3f} | {fl / fc:.2f}x "
            f"| {pc:.3f} | {pl:.3f} | {pl / pc:.2f}x |"
        )
    out = Path(__file__).with_name("memory_format.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
