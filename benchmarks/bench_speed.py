"""Speed of sktorch against skorch and a hand-written PyTorch loop.

Everything runs in one process, on the same data, model and thread settings,
with the contenders' order rotated on every repeat; the report gives medians
and ratios to the hand-written loop measured in the same run (absolute times
on shared machines are noisy, ratios within one run much less so).

    python benchmarks/bench_speed.py              # writes benchmarks/README.md
    python benchmarks/bench_speed.py --quick      # smaller, for a smoke test

Measured:
- seconds per epoch training a 64-256-256-10 ReLU MLP with Adam on 50,000 x 64
  float32 rows and 10 classes, at batch sizes 32, 128 and 1024 (fit time,
  set-up included, divided by the number of epochs);
- ``predict_proba`` latency for 1 row and for 10,000 rows against a plain
  forward pass with softmax;
- a small CNN on 28 x 28 images, one epoch;
- ``GridSearchCV`` wall time with ``n_jobs=1`` and ``n_jobs=2``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import skorch
import sklearn
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

from sktorch import TorchClassifier
from sktorch.models import MLP

N_FEATURES, N_CLASSES = 64, 10


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head; takes flat 784-wide rows."""

    def __init__(self, in_features: int = 784, out_features: int = N_CLASSES) -> None:
        super().__init__()
        self.side = int(round(in_features**0.5))
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 5 * 5, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, self.side, self.side)
        return self.head(self.features(x).flatten(1))


class WideMLP(MLP):
    """64-256-256-10 with ReLU: sktorch's MLP with the benchmark's widths."""

    def __init__(self, in_features: int = N_FEATURES, out_features: int = N_CLASSES) -> None:
        super().__init__(in_features, out_features, hidden_sizes=(256, 256))


# ----------------------------------------------------------------- training
def train_hand(module_cls, X, y, batch_size, epochs):
    """The baseline: pre-made tensors sliced by a shuffled index."""
    start = time.perf_counter()
    torch.manual_seed(0)
    module = module_cls(X.shape[1], N_CLASSES)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t))
        for i in range(0, len(X_t), batch_size):
            index = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(module(X_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
            loss.item()  # what any loop that logs its loss pays
    return (time.perf_counter() - start) / epochs


def train_skorch(module_cls, X, y, batch_size, epochs):
    start = time.perf_counter()
    net = skorch.NeuralNetClassifier(
        module_cls, module__in_features=X.shape[1], module__out_features=N_CLASSES,
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        batch_size=batch_size, max_epochs=epochs, train_split=None, verbose=0,
        iterator_train__shuffle=True, device="cpu",
    )
    net.fit(X, y)
    return (time.perf_counter() - start) / epochs


def train_sktorch(module_cls, X, y, batch_size, epochs):
    start = time.perf_counter()
    TorchClassifier(
        module=module_cls, batch_size=batch_size, max_epochs=epochs, lr=1e-3,
        random_state=0, device="cpu",
    ).fit(X, y)
    return (time.perf_counter() - start) / epochs


CONTENDERS = {"hand-written loop": train_hand, "skorch": train_skorch, "sktorch": train_sktorch}


def time_training(module_cls, X, y, batch_size, epochs, repeats):
    """Median seconds per epoch of each contender, and the median over repeats
    of each contender's ratio to the hand-written loop of the same repeat
    (adjacent runs share the machine's state of the moment)."""
    times = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            times[name].append(CONTENDERS[name](module_cls, X, y, batch_size, epochs))
    baseline = times["hand-written loop"]
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: statistics.median(v / b for v, b in zip(values, baseline))
              for name, values in times.items()}
    return medians, ratios


# ---------------------------------------------------------------- predict
def time_call(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_predict(X, y, rows, repeats):
    clf = TorchClassifier(module=WideMLP, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    net = skorch.NeuralNetClassifier(
        WideMLP, criterion=nn.CrossEntropyLoss, max_epochs=1, train_split=None, verbose=0,
        device="cpu",
    ).fit(X, y)
    module = clf.module_
    rng = np.random.RandomState(1)
    Xq = rng.normal(size=(rows, N_FEATURES)).astype(np.float32)

    def plain():
        with torch.inference_mode():
            return torch.softmax(module(torch.from_numpy(Xq)), dim=1).numpy()

    calls = {"plain forward": plain, "skorch": lambda: net.predict_proba(Xq),
             "sktorch": lambda: clf.predict_proba(Xq)}
    times = {name: [] for name in calls}
    names = list(calls)
    for r in range(5):
        for name in names[r % 3:] + names[: r % 3]:
            times[name].append(time_call(calls[name], repeats))
    baseline = times["plain forward"]
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: statistics.median(v / b for v, b in zip(values, baseline))
              for name, values in times.items()}
    return medians, ratios


# ------------------------------------------------------------ grid search
GRID_EPOCHS = 5


def time_grid_search(X, y, n_jobs):
    grid = {"lr": [1e-3, 1e-2], "module__hidden_sizes": [(64,), (128,)]}
    start = time.perf_counter()
    GridSearchCV(TorchClassifier(max_epochs=GRID_EPOCHS, random_state=0, device="cpu"), grid,
                 cv=3, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start


# ----------------------------------------------------------------- report
def _format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def ratio_table(results):
    """Rows of ``label: (medians, ratios)``: each cell the median time and the
    median ratio to the baseline."""
    lines = []
    for label, (medians, ratios) in results.items():
        cells = [f"{_format_seconds(medians[name])} ({ratios[name]:.2f}x)" for name in medians]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()

    n_rows = 5_000 if args.quick else 50_000
    repeats = 1 if args.quick else 9
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    y = rng.randint(0, N_CLASSES, n_rows).astype(np.int64)

    started = time.perf_counter()
    train_hand(WideMLP, X[:2048], y[:2048], 256, 1)  # first-use costs (thread pools, imports)

    training = {}
    for batch_size in (32, 128, 1024):
        training[f"MLP, batch {batch_size}"] = time_training(WideMLP, X, y, batch_size, 2, repeats)
        print(f"batch {batch_size}: {training[f'MLP, batch {batch_size}']}", flush=True)

    n_images = 1_000 if args.quick else 10_000
    images = rng.rand(n_images, 28 * 28).astype(np.float32)
    image_labels = rng.randint(0, N_CLASSES, n_images).astype(np.int64)
    training["CNN 28x28, batch 128"] = time_training(SmallCNN, images, image_labels, 128, 1, repeats)
    print(f"cnn: {training['CNN 28x28, batch 128']}", flush=True)

    predict = {
        "1 row": time_predict(X[:5000], y[:5000], 1, 50 if args.quick else 500),
        "10,000 rows": time_predict(X[:5000], y[:5000], 10_000, 5 if args.quick else 30),
    }
    print(f"predict: {predict}", flush=True)

    grid_rows = 2_000 if args.quick else 20_000
    grid = {"1": time_grid_search(X[:grid_rows], y[:grid_rows], 1)}
    # The first parallel search starts the worker processes (each imports
    # torch); joblib keeps them for the next one.
    grid["2, cold"] = time_grid_search(X[:grid_rows], y[:grid_rows], 2)
    grid["2, warm"] = time_grid_search(X[:grid_rows], y[:grid_rows], 2)
    print(f"grid search: {grid}", flush=True)

    worst_train = max(ratios["sktorch"] for _, ratios in training.values())
    lines = [
        "# Benchmarks",
        "",
        "Written by `python benchmarks/bench_speed.py`" + (" --quick" if args.quick else "") + f" "
        f"in {time.perf_counter() - started:.0f} s, on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, skorch {skorch.__version__}, "
        f"scikit-learn {sklearn.__version__}. Each repeat runs the contenders back to back, "
        f"in an order rotated between repeats; a cell is the median time over {repeats} repeats "
        "and, in brackets, the median over repeats of the ratio to the baseline of the same "
        "repeat (shared machines drift; adjacent runs drift together).",
        "",
        f"## Training: seconds per epoch ({n_rows:,} rows; CNN: {n_images:,} images)",
        "",
        "| model | " + " | ".join(next(iter(training.values()))[0]) + " |",
        "|---|---|---|---|",
        *ratio_table(training),
        "",
        f"Largest sktorch / hand-written ratio: {worst_train:.2f}x (target: at most 1.10x).",
        "",
        "## `predict_proba` latency",
        "",
        "| input | " + " | ".join(next(iter(predict.values()))[0]) + " |",
        "|---|---|---|---|",
        *ratio_table(predict),
        "",
        "Targets: at most 2x the plain forward for 1 row, at most 1.5x for 10,000 rows.",
        "",
        f"## GridSearchCV wall time (4 candidates x 3 folds, {grid_rows:,} rows, "
        f"{GRID_EPOCHS} epochs)",
        "",
        "| n_jobs | wall time | speed-up over n_jobs=1 |",
        "|---|---|---|",
        *[f"| {name} | {t:.1f} s | {grid['1'] / t:.2f}x |" for name, t in grid.items()],
        "",
        "'cold' includes starting the two worker processes, each importing torch; "
        "joblib keeps them for the next search ('warm').",
        "",
        "joblib's loky workers start with `OMP_NUM_THREADS` set to their share of the cores, "
        "which torch honours: with `n_jobs=2` on 2 cores each worker trains on 1 thread "
        "(`tests/test_threads.py` checks it), so the workers do not oversubscribe the machine.",
        "",
        "How the time is spent, and how much single runs vary: docs/performance.md.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
