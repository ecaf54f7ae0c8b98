"""
The training recipe: learning-rate range test, then a one-cycle schedule
========================================================================

On scikit-learn's digits (8 x 8 images as 64 features): ``lr_find`` runs the
learning-rate range test on a copy of the estimator and suggests a rate; the
estimator then trains with that rate as the peak of a one-cycle schedule, in
bfloat16 mixed precision, with gradient clipping, checkpointing every epoch.
Saves the range-test curve as a PNG (``docs/images/lr_find.png`` when run from
the repository root, else ``lr_find.png``; into a directory given as the
first argument, if any).

Run it with ``python examples/training_recipe.py`` (about 20 s on 2 CPU cores).
"""

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktorch import TorchClassifier  # noqa: E402

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

clf = TorchClassifier(module__hidden_sizes=(128, 64), max_epochs=15, batch_size=64,
                      random_state=0)
result = clf.lr_find(X_train, y_train, start_lr=1e-6, end_lr=10, num_iter=100)
print(f"lr_find: {len(result.lrs)} steps, diverged: {result.diverged}, "
      f"suggestion: {result.suggestion:.3g}")

images = Path("docs/images")
if len(sys.argv) > 1:
    out = Path(sys.argv[1]) / "lr_find.png"
else:
    out = images / "lr_find.png" if images.is_dir() else Path("lr_find.png")
ax = result.plot()
ax.figure.tight_layout()
ax.figure.savefig(out, dpi=100)
plt.show()
print(f"Saved the range-test curve to {out}")

with tempfile.TemporaryDirectory() as checkpoints:
    clf.set_params(
        lr=result.suggestion, lr_scheduler="onecycle", precision="bf16-mixed", max_grad_norm=1.0,
        validation_fraction=0.1, checkpoint_dir=checkpoints,
    )
    clf.fit(X_train, y_train)
    print(f"Checkpoints in {clf.checkpoint_path_.name}: "
          f"{sorted(p.name for p in clf.checkpoint_path_.iterdir())}")
lrs = clf.history_[:, "lr"]
print(f"One-cycle learning rate per epoch: {[f'{lr:.2g}' for lr in lrs]}")
print(f"Test accuracy: {clf.score(X_test, y_test):.3f}")
