"""
Digits as images: a small CNN, finetuning ResNet-18, noise augmentation, Grad-CAM
=================================================================================

scikit-learn's 8x8 digits, as images, through :class:`sktorch.ImageClassifier`:

1. a small CNN tuned by ``GridSearchCV`` over the strength of salt-and-pepper
   augmentation and the learning rate, with the focal loss and a cosine
   learning-rate schedule;
2. finetuning end to end: a ResNet-18 pretrained (here, on the digits 0-4,
   saved as a local weights file) is finetuned on all ten digits, with its
   head replaced, trained alone for one epoch, then with the backbone at a
   tenth of the learning rate;
3. two pictures: noisy training samples, and Grad-CAM heatmaps over test
   digits.

Run it with ``python examples/digits_images.py [output directory]``; it takes
about 20 seconds on two otherwise idle CPU cores.
"""

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402

from sktorch import ImageClassifier  # noqa: E402
from sktorch.explain import grad_cam  # noqa: E402
from sktorch.transforms import SaltAndPepperNoise  # noqa: E402

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
out.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()

digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)  # (n, 8, 8), floats in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(
    images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
)

# -- 1. A small CNN, tuned -------------------------------------------------
search = GridSearchCV(
    ImageClassifier(
        "cnn",
        criterion="focal",
        lr_scheduler="cosine",
        augment=SaltAndPepperNoise(),
        max_epochs=8,
        random_state=0,
    ),
    {"augment__amount": [0.0, 0.05], "lr": [3e-3, 1e-2]},
    cv=2,
)
search.fit(X_train, y_train)
print("CNN grid search (mean accuracy over 2 folds):")
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"  {params}: {score:.3f}")
print(f"Best: {search.best_params_}")
cnn = search.best_estimator_
print(f"CNN test accuracy: {cnn.score(X_test, y_test):.3f}")

# -- 2. Finetuning a ResNet-18 from a local weights file -------------------
# "Pretraining": a ResNet-18 learns the digits 0-4; its state_dict is the
# kind of file a pretrained checkpoint is.
first_half = y_train < 5
pretrained = ImageClassifier("resnet18", image_size=16, lr=1e-3, max_epochs=4, random_state=0)
pretrained.fit(X_train[first_half], y_train[first_half])
weights_path = out / "resnet18_digits_0-4.pt"
torch.save(pretrained.module_.model.state_dict(), weights_path)
print(f"Pretrained on digits 0-4: accuracy {pretrained.score(X_test[y_test < 5], y_test[y_test < 5]):.3f}")

# Finetune on all ten digits: the 5-class head is replaced by a 10-class one,
# trained alone for one epoch (freeze=1), then the whole network trains, the
# backbone at lr * 0.1.
finetuned = ImageClassifier(
    "resnet18",
    weights=str(weights_path),
    image_size=16,
    freeze=1,
    backbone_lr=0.1,
    lr=1e-3,
    max_epochs=3,
    augment=SaltAndPepperNoise(amount=0.02),
    random_state=0,
)
finetuned.fit(X_train, y_train)
print(f"Finetuned ResNet-18 test accuracy: {finetuned.score(X_test, y_test):.3f}")

# -- 3. Pictures -------------------------------------------------------------
noise = SaltAndPepperNoise(amount=0.1)
torch.manual_seed(0)
sample = torch.from_numpy(X_train[:8]).unsqueeze(1)  # (8, 1, 8, 8)
noisy = noise(sample)
fig, axes = plt.subplots(2, 8, figsize=(8, 2.6))
for i in range(8):
    axes[0, i].imshow(sample[i, 0], cmap="gray", vmin=0, vmax=1)
    axes[1, i].imshow(noisy[i, 0], cmap="gray", vmin=0, vmax=1)
    axes[0, i].set_axis_off()
    axes[1, i].set_axis_off()
fig.text(0.02, 0.94, "training digits")
fig.text(0.02, 0.47, "with salt-and-pepper noise (amount=0.1)")
fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.02, hspace=0.35)
fig.savefig(out / "noisy_samples.png", dpi=100)

heat = grad_cam(cnn, X_test[:8])
predicted = cnn.predict(X_test[:8])
fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
for i, ax in enumerate(axes):
    ax.imshow(X_test[i], cmap="gray", vmin=0, vmax=1)
    ax.imshow(heat[i], cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_title(f"pred {predicted[i]}")
    ax.set_axis_off()
fig.suptitle("Grad-CAM of the CNN on test digits")
fig.tight_layout()
fig.savefig(out / "grad_cam.png", dpi=100)
plt.show()

print(f"Wrote {out / 'noisy_samples.png'} and {out / 'grad_cam.png'}")
print(f"Total time: {time.perf_counter() - start:.1f} s")
