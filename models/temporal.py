"""Video mode (not in the paper): the enhancement's per-frame colour gain follows a moving average over the clip, so
that the brightness of a static scene does not jump from one frame to the next (docs/FIDELITY.md)."""
import numpy as np


class GainSmoother:
    """Rescales each enhanced frame so that its colour gain (the mean of each output channel over the mean of the
    input's, +1 against black frames) is the exponential moving average of the gains so far, with a span of
    `window` frames (the newest weighs 2 / (window + 1)). One object per clip; frames come in order."""

    def __init__(self, window):
        self.weight = 2 / (window + 1)
        self.gain = None

    def __call__(self, inputs, outputs):
        """The smoothed versions of outputs (N, H, W, 3) uint8, enhanced from inputs (N, H, W, 3) uint8."""
        smoothed = []
        for low, high in zip(inputs, outputs):
            high = high.astype(np.float32)
            gain = (high.mean((0, 1)) + 1) / (low.mean((0, 1), dtype=np.float32) + 1)
            self.gain = gain if self.gain is None else self.gain + self.weight * (gain - self.gain)
            smoothed.append(np.clip(np.round(high * (self.gain / gain)), 0, 255).astype(np.uint8))
        return np.stack(smoothed)
