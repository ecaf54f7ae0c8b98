"""Helpers for sphinx-gallery, named by string in ``docs/conf.py`` so that the
configuration stays picklable."""

import shutil
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "_build" / "gallery_output"

# Examples whose first argument is the directory they write files into.
TAKES_OUTPUT_DIR = {"digits_images.py", "segmentation.py", "tensorboard_logging.py",
                    "training_recipe.py"}


def reset_argv(gallery_conf, script_vars):
    """Command-line arguments of an example run by sphinx-gallery."""
    name = Path(script_vars["src_file"]).name
    if name not in TAKES_OUTPUT_DIR:
        return []
    out = OUTPUT / Path(name).stem
    shutil.rmtree(out, ignore_errors=True)  # tensorboard_logging counts its runs
    out.mkdir(parents=True, exist_ok=True)
    return [str(out)]
