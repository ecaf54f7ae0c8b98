"""Data: input and target adapters, tensors, images, batch iterators and augmentation plans."""
