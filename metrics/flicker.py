"""Temporal stability of an enhanced video: how much more its brightness changes from frame to frame than its
input's does. A flicker ratio of 1.0 means the enhancement added no flicker (a constant gain changes nothing)."""
import numpy as np

from util.util import UserError
from util.video import open_video

BT601 = np.array([0.299, 0.587, 0.114])
STATIC_TOLERANCE = 25


def luma_frames(path):
    """The luma (ITU-R BT.601, 0..255) of each frame of path's first video stream, as (N, H, W) floats."""
    with open_video(path) as (container, stream):
        return np.stack([f.to_ndarray(format='rgb24') @ BT601 for f in container.decode(stream)])


def brightness_change(frames, where=None):
    """The mean absolute frame-to-frame change of the log mean luma (+1) of frames (N, H, W), over the pixels where
    (H, W) is true (all by default)."""
    means = frames.mean((1, 2)) if where is None else frames[:, where].mean(1)
    return np.abs(np.diff(np.log1p(means))).mean()


def flicker(output, reference):
    """{'flicker': the ratio of output's frame-to-frame brightness change to reference's (its input), over whole
    frames; 'static_flicker': the same over the pixels that stay within STATIC_TOLERANCE grey levels of their
    median throughout the input (for a static camera: brightness jumps of the background when something moves;
    None where no pixel is static)}, for two (N, H, W) luma clips of the same size."""
    if output.shape != reference.shape:
        raise UserError('the clips differ in frames or size (%s, %s); compare an output with its own input'
                        % ('x'.join(map(str, output.shape)), 'x'.join(map(str, reference.shape))))
    if len(output) < 2:
        raise UserError('flicker needs two frames or more, not %d' % len(output))
    static = (np.abs(reference - np.median(reference, 0)) <= STATIC_TOLERANCE).all(0)
    ratios = {}
    for name, where in (('flicker', None), ('static_flicker', static)):
        if where is not None and not where.any():
            ratios[name] = None
            continue
        ratios[name] = float(brightness_change(output, where) / max(brightness_change(reference, where), 1e-12))
    return ratios
