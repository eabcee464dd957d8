"""Synthetic night clips for the video tests, as (N, H, W, 3) uint8 frames: a static dark scene with sensor noise,
and the same scene under a global light flicker, with a lamp switching on and off, with a bright object moving
across it, and seen by a panning camera."""
import numpy as np

SIZE = (121, 67)


def texture(width, height, seed=None):
    """A dark RGB scene, (height, width, 3) floats around 5..60: smooth stripes, and with a seed six patches."""
    yy, xx = np.mgrid[:height, :width]
    scene = 20 + 15 * np.sin(xx / 9.0)[..., None] * np.array([1, .8, .6]) + 10 * (yy / height)[..., None]
    rng = np.random.default_rng(seed)
    for _ in range(6 if seed is not None else 0):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        scene[top:top + rng.integers(6, 20), left:left + rng.integers(6, 24)] += rng.uniform(-10, 25, 3)
    return np.clip(scene, 2, 255)


def noisy(frames, seed):
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, 3, frames.shape), 0, 255).astype(np.uint8)


def dark_scene(n, seed=0, size=SIZE):
    """n frames of a static dark scene with sensor noise and a bright object moving across it."""
    w, h = size
    frames = noisy(np.repeat(texture(w, h)[None], n, 0), seed)
    for i, frame in enumerate(frames):
        left = 10 + i * (w - 40) // n
        frame[20:40, left:left + 14] = 230
    return frames


def global_flicker(n, seed=0, size=SIZE):
    """n frames of a static dark scene whose light flickers: each frame's brightness is off by up to 8%."""
    w, h = size
    gains = 1 + np.random.default_rng(seed + 1).uniform(-0.08, 0.08, n)
    return noisy(texture(w, h, seed)[None] * gains[:, None, None, None], seed)


def lamp(n, seed=0, size=SIZE):
    """n frames of a static dark scene where a small lamp in one corner is on for the middle third."""
    w, h = size
    frames = np.repeat(texture(w, h, seed)[None], n, 0)
    frames[n // 3:2 * n // 3, 4:16, w - 16:w - 4] = 240
    return noisy(frames, seed)


def pan(n, seed=0, size=SIZE, step=(1, 2)):
    """n frames of a camera panning over a larger dark scene by step (dy, dx) pixels a frame, under a light whose
    brightness flickers by up to 8%."""
    w, h = size
    scene = texture(w + n * step[1], h + n * step[0], seed)
    gains = 1 + np.random.default_rng(seed + 1).uniform(-0.08, 0.08, n)
    frames = np.stack([scene[i * step[0]:i * step[0] + h, i * step[1]:i * step[1] + w] * g
                       for i, g in enumerate(gains)])
    return noisy(frames, seed)


CLIPS = {'global flicker': global_flicker, 'lamp': lamp, 'moving object': dark_scene, 'pan': pan}
