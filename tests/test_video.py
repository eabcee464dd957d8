"""Video (scripts/enhance_video.py): frame count, timestamps, size, rotation and sound survive; every frame is the
per-frame enhancement of its input; --temporal_window removes added flicker; bad input gives one line and leaves
nothing at --out."""
import fractions
import importlib.util
import os
import resource
import signal
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from conftest import ROOT
from enhancer import load_enhancer
from helpers import save_tiny_checkpoint
from metrics.flicker import flicker, luma_frames
from models.temporal import GainSmoother

SPEC = importlib.util.spec_from_file_location('enhance_video', os.path.join(ROOT, 'scripts', 'enhance_video.py'))
enhance_video = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(enhance_video)

SIZE = (121, 67)
MS = fractions.Fraction(1, 1000)
# crf 0 in yuv444p is lossless in YUV; what remains is 8-bit RGB -> YUV -> RGB rounding (measured at most 2 levels)
CODEC_ERROR = 3


def dark_scene(n, seed=0, size=SIZE):
    """n frames of a static dark scene with sensor noise and a bright object moving across it, (n, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    scene = 20 + 15 * np.sin(xx / 9.0)[..., None] * np.array([1, .8, .6]) + 10 * (yy / h)[..., None]
    frames = scene + rng.normal(0, 3, (n, h, w, 3))
    for i, frame in enumerate(frames):
        left = 10 + i * (w - 40) // n
        frame[20:40, left:left + 14] = 230
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_clip(path, frames, durations_ms, audio=True, rotation=0, codec='libx264'):
    """A clip as a camera would write it: H.264 (lossless, yuv444p for the odd size) with the given frame
    durations, an AAC sound track and a rotation in the container."""
    with av.open(str(path), 'w') as out:
        video = out.add_stream(codec, rate=24)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = 'yuv444p' if codec == 'libx264' else 'yuv420p'
        video.options = {'crf': '0'} if codec == 'libx264' else {}
        video.time_base = video.codec_context.time_base = MS
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream('aac', rate=8000, layout='mono') if audio else None
        pts = 0
        for image, duration in zip(frames, durations_ms):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts, frame.time_base = pts, MS
            out.mux(video.encode(frame))
            pts += duration
        out.mux(video.encode(None))
        if sound:
            samples = 8 * pts
            for start in range(0, samples, 1024):
                wave = 0.3 * np.sin(np.arange(start, min(start + 1024, samples)) / 5)[None].astype(np.float32)
                block = av.AudioFrame.from_ndarray(wave, format='fltp', layout='mono')
                block.sample_rate, block.pts, block.time_base = 8000, start, fractions.Fraction(1, 8000)
                out.mux(sound.encode(block))
            out.mux(sound.encode(None))
    return str(path)


def read_clip(path):
    """(frames (N, H, W, 3), timestamps in seconds, rotation, [(audio packet bytes, seconds)]) of a clip."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        frames = np.stack([f.to_ndarray(format='rgb24') for f in decoded])
        times = [float(f.pts * f.time_base) for f in decoded]
        rotation = decoded[0].rotation
    with av.open(str(path)) as container:
        audio = [(bytes(p), float(p.pts * p.time_base)) for p in container.demux(audio=0) if p.size] \
            if container.streams.audio else []
    return frames, times, rotation, audio


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('video')
    return {
        'folder': save_tiny_checkpoint(root),
        'static': write_clip(root / 'static.mp4', dark_scene(48), [41, 42, 42] * 16, rotation=90),
        'vfr': write_clip(root / 'vfr.mkv', dark_scene(9, seed=1, size=(32, 20)), [30, 50, 120] * 3, audio=False),
    }


def run(*argv):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'enhance_video.py'), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_every_frame_is_enhanced_with_its_timing_size_rotation_and_sound(clips, tmp_path):
    out = tmp_path / 'out.mp4'
    result = run(clips['static'], '--checkpoints', clips['folder'], '--out', str(out), '--crf', '0',
                 '--batch_size', '5')
    assert result.returncode == 0, result.stderr[-2000:]
    frames, times, rotation, audio = read_clip(clips['static'])
    enhanced, out_times, out_rotation, out_audio = read_clip(out)
    assert enhanced.shape == frames.shape and frames.shape[1:3] == SIZE[::-1]
    assert np.allclose(out_times, times, atol=1e-4) and out_rotation == rotation == 90
    assert out_audio == audio and len(audio) > 10
    enhancer = load_enhancer(clips['folder'])
    expected = np.stack([enhancer(frame) for frame in frames])
    error = np.abs(enhanced.astype(int) - expected)
    assert error.max() <= CODEC_ERROR and error.mean() < 0.5, (error.max(), error.mean())
    assert not [name for name in os.listdir(tmp_path) if name != 'out.mp4']


def test_variable_frame_rate_and_container_are_kept(clips, tmp_path):
    out = tmp_path / 'out.mkv'
    result = run(clips['vfr'], '--checkpoints', clips['folder'], '--out', str(out), '--crf', '0')
    assert result.returncode == 0, result.stderr[-2000:]
    _, times, _, _ = read_clip(clips['vfr'])
    _, out_times, _, _ = read_clip(out)
    assert out_times == times and np.allclose(np.diff(times), [0.03, 0.05, 0.12, 0.03, 0.05, 0.12, 0.03, 0.05])
    with av.open(str(out)) as container:
        assert container.format.name == 'matroska,webm'


class FlickeringEnhancer:
    """A stand-in for a network that flickers: it brightens each frame by its own random gain around 4."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def tensor(self, batch):
        gains = torch.from_numpy(self.rng.uniform(3, 5, (len(batch), 3, 1, 1))).float()
        return ((batch + 1) * gains - 1).clamp(-1, 1)


def luma(frames):
    return frames.astype(float) @ [0.299, 0.587, 0.114]


def test_temporal_window_removes_the_flicker_that_enhancement_adds():
    frames = dark_scene(48)
    steady = frames.astype(float) * 1.1
    assert abs(flicker(luma(steady), luma(frames))['flicker'] - 1) < 0.01  # a constant gain adds no flicker
    outputs = {}
    for window in (0, 16):
        args = enhance_video.parse(['in.mp4', '--checkpoints', 'x', '--out', 'o.mp4', '--temporal_window',
                                    str(window)])
        enhance = enhance_video.batch_enhancer(FlickeringEnhancer(), args)
        outputs[window] = np.concatenate([enhance(frames[i:i + 5]) for i in range(0, len(frames), 5)])
    per_frame, smoothed = (flicker(luma(outputs[w]), luma(frames)) for w in (0, 16))
    assert per_frame['flicker'] > 3 and per_frame['static_flicker'] > 3
    assert smoothed['flicker'] < per_frame['flicker'] / 2 and smoothed['static_flicker'] < per_frame[
        'static_flicker'] / 2, (per_frame, smoothed)
    assert np.abs(outputs[16].astype(float) - outputs[0]).mean() < 0.15 * outputs[0].mean()


def test_smoothing_follows_a_moving_average_of_the_gain():
    low = np.full((3, 2, 2, 3), 9, np.uint8)
    high = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (39, 79, 39)])  # gains 4, 8, 4 (with the +1)
    smoothed = GainSmoother(3)(low, high)  # weight 1/2: gains 4, 6, 5
    assert smoothed[:, 0, 0, 0].tolist() == [39, 59, 49]


def test_flicker_of_files(clips):
    frames = luma_frames(clips['vfr'])
    assert frames.shape == (9, 20, 32)
    assert abs(flicker(frames, frames)['flicker'] - 1) < 1e-9
