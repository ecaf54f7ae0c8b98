# View the logs with:  tensorboard --logdir runs
# (after `python examples/tensorboard_logging.py runs`; without an argument the
# logs go to a fresh temporary directory, printed at the end).
"""
TensorBoard logging: curves, histograms, graph and a hyperparameter search
==========================================================================

A ``TorchClassifier`` on scikit-learn's digits (8 x 8 images as 64 features)
logs every fit to TensorBoard: training and validation losses, validation
accuracy and macro F1, the learning rate, weight and gradient histograms,
the network's graph and, at the end of each fit, its hyperparameters with
its final metrics. ``GridSearchCV`` over the learning rate, two fits at a
time, writes one run directory per fit (each fold of each candidate, and
the refit), named from the hyperparameters that differ from the defaults:
TensorBoard's Scalars tab overlays their curves and its HParams tab ranks
them side by side. The figure shows the learning curves of the refit of the
best candidate, drawn by its ``plot_history()``.

Run it with ``python examples/tensorboard_logging.py [LOG_DIR]`` (about
15 s on 2 CPU cores).
"""

import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from sktorch import TorchClassifier

start = time.perf_counter()
log_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="sktorch-runs-"))

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel intensities 0..16 to [0, 1]

clf = TorchClassifier(
    module__hidden_sizes=(64,),
    max_epochs=3,
    batch_size=64,
    validation_fraction=0.2,
    metrics=("accuracy", "f1_macro"),
    tensorboard=log_dir,
    random_state=0,
)
search = GridSearchCV(clf, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2)
search.fit(X, y)

print(f"Best parameters: {search.best_params_}, cross-validated accuracy "
      f"{search.best_score_:.3f}")
runs = sorted(path for path in log_dir.iterdir() if path.is_dir())
print(f"{len(runs)} run directories under {log_dir}:")
for run in runs:
    print(f"  {run.name}")
best_run = Path(dict(search.best_estimator_.net_.callbacks_)["tensorboard"].run_dir_)
print(f"The refit of the best candidate: {best_run.name}")
print(f"View them with: tensorboard --logdir {log_dir}")

axes = search.best_estimator_.plot_history()
axes[0].figure.set_size_inches(11, 3.2)
axes[0].figure.suptitle(f"Refit of the best candidate, {search.best_params_}")
print(f"Done in {time.perf_counter() - start:.1f} s")
plt.show()
if len(runs) != 2 * 2 + 1:
    raise SystemExit("tensorboard_logging: expected one run directory per fit (5)")
