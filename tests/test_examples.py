"""The README's main job runs end to end and meets its own bar."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_reaches_its_accuracy(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Cross-validation results:" in out
    assert "mean_test_score" in out and out.count("\n") > 10
    accuracy = float(re.search(r"Held-out accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95
    assert "predictions identical: True" in out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    test_commands = [c for c in commands if "pytest" in c]
    assert len(test_commands) == 1, "the README gives one test command"
    assert test_commands[0].strip() in ci
    assert any("examples/quickstart.py" in c for c in commands)


def test_training_recipe_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "training_recipe.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "lr_find.png").stat().st_size > 10_000
    accuracy = float(re.search(r"Test accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.9


def test_tensorboard_example_writes_one_run_per_fit(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tensorboard_logging.py"), str(tmp_path / "runs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 5
    assert all(any(p.glob("events.out.tfevents.*")) for p in runs)


def test_digits_images_example_finetunes_and_draws(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits_images.py"), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert float(re.search(r"CNN test accuracy: ([0-9.]+)", out).group(1)) > 0.95
    assert float(re.search(r"Finetuned ResNet-18 test accuracy: ([0-9.]+)", out).group(1)) > 0.9
    # The grid: one line per candidate.
    assert len(re.findall(r"^  \{'augment__amount': ", out, flags=re.M)) == 4
    for picture in ("noisy_samples.png", "grad_cam.png"):
        assert (tmp_path / picture).stat().st_size > 5_000
    assert (tmp_path / "resnet18_digits_0-4.pt").exists()


def test_segmentation_example_reaches_its_iou_and_draws(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "segmentation.py"), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert float(re.search(r"Shapes held-out mean IoU: ([0-9.]+)", out).group(1)) >= 0.85
    assert float(re.search(r"Coins held-out mean IoU: ([0-9.]+)", out).group(1)) >= 0.8
    assert (tmp_path / "segmentation.png").stat().st_size > 5_000
