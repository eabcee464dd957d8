"""Generic helpers (user errors, atomic files, images, HTML pages) and where a command runs (device, torchrun)."""
