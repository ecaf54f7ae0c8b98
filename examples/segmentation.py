"""
Segmentation: a U-Net on synthetic shapes and on scikit-image's coins
=====================================================================

:class:`sktorch.ImageSegmenter` learns one class label per pixel:

1. synthetic shapes: gray images of bright discs and squares on a noisy
   background, three classes (background, disc, square); a small U-Net is
   trained with the default Dice + cross-entropy loss and flips and
   right-angle rotations as augmentation, which move each mask with its
   image;
2. scikit-image's ``coins`` photograph, with a mask derived from Otsu's
   threshold (coin or background, booleans: one sigmoid output channel),
   cut into overlapping 32x32 patches; the right quarter of the photograph
   is held out;
3. a picture of held-out images, their true masks and the predicted ones.

Both report the mean IoU (:func:`sktorch.metrics.mean_iou`) on held-out
images. Run it with ``python examples/segmentation.py [output directory]``;
it takes about half a minute on two CPU cores.
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage import data, filters, morphology  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from sktorch import ImageSegmenter  # noqa: E402
from sktorch.metrics import mean_iou  # noqa: E402

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
out.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()


def shapes(n, size=32, seed=0):
    """Images (n, size, size) in [0, 1] with one to three discs (class 1)
    and squares (class 2) each, on a noisy background (class 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.3, 0.08, (n, size, size))
    y = np.zeros((n, size, size), np.int64)
    rows, cols = np.mgrid[:size, :size]
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            kind, r = rng.integers(1, 3), rng.integers(3, size // 5 + 1)
            cy, cx = rng.integers(r, size - r, 2)
            if kind == 1:
                inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
            else:
                inside = (abs(rows - cy) <= r) & (abs(cols - cx) <= r)
            y[i][inside] = kind
            X[i][inside] = rng.uniform(0.6, 0.9)
    X += rng.normal(0, 0.05, X.shape)
    return np.clip(X, 0, 1).astype(np.float32), y


# -- 1. Synthetic shapes ---------------------------------------------------
X_train, y_train = shapes(320, seed=0)
X_test, y_test = shapes(100, seed=1)
flips_and_turns = [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                   v2.RandomChoice([v2.RandomRotation((angle, angle)) for angle in (0, 90)])]
shapes_model = ImageSegmenter(
    "unet",
    module__depth=2,
    module__width=8,
    augment=flips_and_turns,
    lr=0.01,
    max_epochs=15,
    batch_size=16,
    random_state=0,
).fit(X_train, y_train)
shapes_pred = shapes_model.predict(X_test)
print(f"Shapes classes: {shapes_model.classes_.tolist()} (background, disc, square)")
print(f"Shapes held-out mean IoU: {mean_iou(y_test, shapes_pred):.3f}")
per_class = mean_iou(y_test, shapes_pred, average=None)
names = ["background", "disc", "square"]
print("Shapes per-class IoU:", {name: round(float(iou), 3) for name, iou in zip(names, per_class)})

# -- 2. Coins, with an Otsu mask -------------------------------------------
coins = data.coins()  # (303, 384) uint8
# Otsu's threshold, cleaned: an opening removes specks of bright background,
# and filling holes makes each coin one solid region.
mask = coins > filters.threshold_otsu(coins)
mask = ndimage.binary_fill_holes(ndimage.binary_opening(mask, structure=morphology.disk(2)))


def patches(image, labels, columns, size=32, stride=16):
    """Overlapping size x size patches whose columns lie in ``columns``."""
    pairs = [(image[r:r + size, c:c + size], labels[r:r + size, c:c + size])
             for r in range(0, image.shape[0] - size + 1, stride)
             for c in range(columns.start, columns.stop - size + 1, stride)]
    return np.stack([p for p, _ in pairs]), np.stack([m for _, m in pairs])


split = 288  # the right quarter of the photograph is held out
coins_X_train, coins_y_train = patches(coins, mask, range(0, split))
coins_X_test, coins_y_test = patches(coins, mask, range(split, coins.shape[1]))
coins_model = ImageSegmenter(
    module__depth=2, module__width=8, augment=[v2.RandomHorizontalFlip()], lr=0.01,
    max_epochs=15, batch_size=16, random_state=0,
).fit(coins_X_train, coins_y_train)  # uint8 patches, boolean masks
coins_pred = coins_model.predict(coins_X_test)
print(f"Coins: {len(coins_X_train)} training patches, {len(coins_X_test)} held out; "
      f"{coins_model.n_outputs_} output channel (sigmoid)")
print(f"Coins held-out mean IoU: {coins_model.score(coins_X_test, coins_y_test):.3f}")

# -- 3. Picture: image, true mask, predicted mask ---------------------------
rows = [(X_test[i], y_test[i], shapes_pred[i]) for i in range(3)]
rows += [(coins_X_test[i], coins_y_test[i], coins_pred[i]) for i in (5, 12)]
fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2 * len(rows)))
for (image, true, predicted), ax in zip(rows, axes):
    ax[0].imshow(image, cmap="gray")
    ax[1].imshow(true, cmap="viridis", vmin=0, vmax=2, interpolation="nearest")
    ax[2].imshow(predicted, cmap="viridis", vmin=0, vmax=2, interpolation="nearest")
for ax, title in zip(axes[0], ("image", "true mask", "predicted mask")):
    ax.set_title(title)
for ax in axes.flat:
    ax.set_axis_off()
fig.tight_layout()
fig.savefig(out / "segmentation.png", dpi=100)
plt.show()
print(f"Saved {out / 'segmentation.png'}")
print(f"Done in {time.perf_counter() - start:.0f} s")
