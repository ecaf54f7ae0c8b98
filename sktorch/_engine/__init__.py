"""Engine: the skorch net, the inference loop, training state and data-parallel training."""
