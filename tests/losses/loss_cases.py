"""Random inputs shared by the loss tests."""

import torch


def make_case(mode, n=2, c=3, spatial=(2, 3), dtype=torch.float32, binary_channel=False):
    """Logits and a matching target for ``mode``. In 'binary' mode the logits
    have one channel; the target has it too when ``binary_channel``."""
    logits = torch.randn(n, c, *spatial, dtype=dtype)
    if mode == "multiclass":
        target = torch.randint(0, c, (n, *spatial))
    elif mode == "binary":
        logits = logits[:, :1]
        shape = (n, 1, *spatial) if binary_channel else (n, *spatial)
        target = torch.randint(0, 2, shape).float()
    else:
        target = torch.randint(0, 2, (n, c, *spatial)).float()
    return logits, target
