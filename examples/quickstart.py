"""
Quickstart: a PyTorch network tuned like any scikit-learn estimator
===================================================================

A ``TorchClassifier`` inside a ``Pipeline`` with a ``StandardScaler``, tuned by
``GridSearchCV`` over the learning rate, the hidden layer sizes and the loss,
on scikit-learn's breast cancer data set. The best pipeline is evaluated on
held-out data, pickled, loaded back and used for prediction; the figure is
the confusion matrix of its held-out predictions.

Run it with ``python examples/quickstart.py``; it takes well under a minute
on two CPU cores.
"""

import pickle
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sktorch import TorchClassifier

start = time.perf_counter()
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=1)

pipeline = Pipeline(
    [
        ("scale", StandardScaler()),
        ("net", TorchClassifier(max_epochs=20, batch_size=32, random_state=0)),
    ]
)
param_grid = {
    "net__lr": [1e-3, 1e-2],
    "net__module__hidden_sizes": [(32,), (64, 32)],
    "net__criterion": ["cross_entropy", "bce"],
}
search = GridSearchCV(pipeline, param_grid, cv=3, n_jobs=1)
search.fit(X_train, y_train)

columns = ["param_net__lr", "param_net__module__hidden_sizes", "param_net__criterion",
           "mean_test_score", "std_test_score", "rank_test_score"]
table = pd.DataFrame(search.cv_results_)[columns].sort_values("rank_test_score")
print("Cross-validation results:")
print(table.to_string(index=False))
print(f"\nBest parameters: {search.best_params_}")

accuracy = search.score(X_test, y_test)
print(f"Held-out accuracy: {accuracy:.4f}")
display = ConfusionMatrixDisplay.from_estimator(
    search.best_estimator_, X_test, y_test, display_labels=["malignant", "benign"], colorbar=False
)
display.ax_.set_title(f"Held-out predictions of the best pipeline (accuracy {accuracy:.3f})")

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "best_pipeline.pkl"
    path.write_bytes(pickle.dumps(search.best_estimator_))
    reloaded = pickle.loads(path.read_bytes())
    same = np.array_equal(reloaded.predict_proba(X_test), search.best_estimator_.predict_proba(X_test))
    print(f"Reloaded from {path.name} ({path.stat().st_size / 1024:.0f} KiB): "
          f"predictions identical: {same}; first five: {reloaded.predict(X_test[:5]).tolist()}")

print(f"Done in {time.perf_counter() - start:.1f} s")
plt.show()
if accuracy < 0.95 or not same:
    raise SystemExit("quickstart: expected held-out accuracy >= 0.95 and identical reloaded predictions")
