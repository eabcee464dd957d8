"""Video (scripts/enhance_video.py): frame count, timestamps, size, rotation and sound survive; every frame is the
per-frame enhancement of its input; --temporal_window removes added flicker; bad input gives one line and leaves
nothing at --out."""
import fractions
import os
import resource
import signal

import av
import numpy as np
import pytest
import torch

from clips import CLIPS, SIZE, dark_scene
from enhancer import load_enhancer
from helpers import load_script, refused, run_script, save_tiny_checkpoint, umask
from metrics.flicker import flicker, luma_frames
from models import temporal
from models.inference import Enhancer, ImageEnhancer
from models.temporal import TemporalSmoother
from util.util import UserError

enhance_video = load_script('scripts/enhance_video.py')
evaluate = load_script('scripts/evaluate.py')

MS = fractions.Fraction(1, 1000)
# crf 0 in yuv444p is lossless in YUV; what remains is 8-bit RGB -> YUV -> RGB rounding (measured at most 2 levels)
CODEC_ERROR = 3


def write_clip(path, frames, durations_ms, audio=True, rotation=0, codec='libx264', subtitles=None, lossless=True):
    """A clip as a camera would write it: H.264 (lossless, yuv444p for the odd size; else x264's defaults, with
    B-frames) with the given frame durations, an AAC sound track, a rotation in the container and the subtitles of
    an .srt file."""
    with av.open(str(path), 'w') as out:
        video = out.add_stream(codec, rate=24)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = 'yuvj420p' if codec != 'libx264' else 'yuv444p' if lossless else 'yuv420p'
        video.options = {'crf': '0'} if codec == 'libx264' and lossless else {}
        video.time_base = video.codec_context.time_base = MS
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream('aac', rate=8000, layout='mono') if audio else None
        srt = av.open(subtitles) if subtitles else None
        text = out.add_stream_from_template(srt.streams.subtitles[0]) if srt else None
        pts, lasting = 0, {}

        def mux(packets):  # each frame with its duration (the encoder's would be the frame rate's)
            for packet in packets:
                packet.duration = lasting[packet.pts]
                out.mux(packet)
        for image, duration in zip(frames, durations_ms):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts, frame.time_base = pts, MS
            lasting[pts] = duration
            mux(video.encode(frame))
            pts += duration
        mux(video.encode(None))
        if sound:
            samples = 8 * pts
            for start in range(0, samples, 1024):
                wave = 0.3 * np.sin(np.arange(start, min(start + 1024, samples)) / 5)[None].astype(np.float32)
                block = av.AudioFrame.from_ndarray(wave, format='fltp', layout='mono')
                block.sample_rate, block.pts, block.time_base = 8000, start, fractions.Fraction(1, 8000)
                out.mux(sound.encode(block))
            out.mux(sound.encode(None))
        if srt:
            for packet in srt.demux():
                if packet.size:
                    packet.stream = text
                    out.mux(packet)
            srt.close()
    return str(path)


def read_clip(path, kind='audio'):
    """(frames (N, H, W, 3), timestamps in seconds, rotation, [(bytes, seconds) of each packet of the first stream
    of kind]) of a clip."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        frames = np.stack([f.to_ndarray(format='rgb24') for f in decoded])
        times = [float(f.pts * f.time_base) for f in decoded]
        rotation = decoded[0].rotation
    with av.open(str(path)) as container:
        streams = getattr(container.streams, kind)
        audio = [(bytes(p), float(p.pts * p.time_base)) for p in container.demux(streams[0]) if p.size] \
            if streams else []
    return frames, times, rotation, audio


def write_subtitles(path):
    path.write_text('1\n00:00:00,000 --> 00:00:00,150\nA car passes\n\n2\n00:00:00,200 --> 00:00:00,500\nQuiet\n')
    return str(path)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('video')
    return {
        'folder': save_tiny_checkpoint(root),
        'static': write_clip(root / 'static.mp4', dark_scene(48), [41, 42, 42] * 16, rotation=90),
        'vfr': write_clip(root / 'vfr.mkv', dark_scene(9, seed=1, size=(32, 20)), [30, 50, 120] * 3, audio=False,
                          subtitles=write_subtitles(root / 'night.srt')),
    }


def test_every_frame_is_enhanced_with_its_timing_size_rotation_and_sound(clips, tmp_path):
    out = tmp_path / 'out.mp4'
    result = run_script('scripts/enhance_video.py', clips['static'], '--checkpoints', clips['folder'], '--out',
                        str(out), '--crf', '0', '--batch_size', '5')
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


def test_frames_keep_their_own_times_in_a_clip_with_b_frames(clips, tmp_path):
    """x264's defaults (what phones write) reorder frames: a packet's time is not the time of the frame its decoding
    gives, so the frames must be stamped with their own."""
    clip = write_clip(tmp_path / 'camera.mp4', dark_scene(24, size=(64, 48)), [30, 50, 120] * 8, audio=False,
                      lossless=False)
    with av.open(clip) as container:
        reordered = sum(f.pts != packet.pts for packet in container.demux(video=0) for f in packet.decode())
    assert reordered > 5
    out = tmp_path / 'out.mp4'
    result = run_script('scripts/enhance_video.py', clip, '--checkpoints', clips['folder'], '--out', str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_clip(out)[1] == read_clip(clip)[1]


def test_the_output_clip_gets_the_mode_the_umask_gives(clips, tmp_path):
    with umask(0o022):
        result = run_script('scripts/enhance_video.py', clips['vfr'], '--checkpoints', clips['folder'], '--out',
                            str(tmp_path / 'out.mkv'))
    assert result.returncode == 0, result.stderr[-2000:]
    assert oct((tmp_path / 'out.mkv').stat().st_mode & 0o777) == '0o644'


def test_odd_sides_are_stored_in_yuv444p():
    assert [enhance_video.pixel_format('libx264', *size) for size in ((32, 20), (32, 21), (31, 20), (31, 21))] == \
        ['yuv420p', 'yuv444p', 'yuv444p', 'yuv444p']


def test_variable_frame_rate_container_and_subtitles_are_kept(clips, tmp_path):
    out = tmp_path / 'out.mkv'
    result = run_script('scripts/enhance_video.py', clips['vfr'], '--checkpoints', clips['folder'], '--out',
                        str(out), '--crf', '0')
    assert result.returncode == 0, result.stderr[-2000:]
    _, times, _, subtitles = read_clip(clips['vfr'], 'subtitles')
    _, out_times, _, out_subtitles = read_clip(out, 'subtitles')
    assert out_subtitles == subtitles == [(b'A car passes', 0.0), (b'Quiet', 0.2)]
    assert out_times == times and np.allclose(np.diff(times), [0.03, 0.05, 0.12, 0.03, 0.05, 0.12, 0.03, 0.05])
    with av.open(str(out)) as container:
        assert container.format.name == 'matroska,webm'


class GainEnhancer(ImageEnhancer):
    """A stand-in for a network: it brightens each frame by gains (N, 3) in [0, 1] terms, clipping at white."""

    def __init__(self, gains):
        self.gains = gains

    def tensor(self, batch):
        gains, self.gains = self.gains[:len(batch)], self.gains[len(batch):]
        return ((batch + 1) * torch.from_numpy(gains).float()[:, :, None, None] - 1).clamp(-1, 1)


class CurveEnhancer(ImageEnhancer):
    """A stand-in for a network that adds no flicker: one fixed tone curve (gamma 0.4) for every frame."""

    def tensor(self, batch):
        return ((batch + 1) / 2).clamp(min=0) ** 0.4 * 2 - 1


class NormalisingEnhancer(ImageEnhancer):
    """A stand-in for a network that removes the input's flicker: each frame scaled to a mean of 110 grey levels."""

    def tensor(self, batch):
        batch = (batch + 1) / 2
        return (batch * (110 / 255) / batch.mean((1, 2, 3), keepdim=True)).clamp(0, 1) * 2 - 1


def flickering(n):
    """A stand-in for a network that adds flicker: each frame brightened by its own random gain around 4."""
    return GainEnhancer(np.random.default_rng(0).uniform(3, 5, (n, 3)))


def luma(frames):
    return frames.astype(float) @ [0.299, 0.587, 0.114]


class Replay:
    """Hands back outputs computed before, in order, as the enhancer of enhance_video would compute them."""

    def __init__(self, outputs):
        self.outputs, self.done = outputs, 0

    def __call__(self, frames):
        self.done += len(frames)
        return self.outputs[self.done - len(frames):self.done]


def smoothed(enhance, frames, windows, batch=5):
    """{window: the clip enhanced by enhance through enhance_video's batches, smoothed over window frames}; window
    0 is frame by frame."""
    result = {0: np.concatenate([enhance(frames[i:i + batch]) for i in range(0, len(frames), batch)])}
    for window in windows:
        args = enhance_video.parse(['in.mp4', '--checkpoints', 'x', '--out', 'o.mp4', '--temporal_window',
                                    str(window)])
        steady = enhance_video.batch_enhancer(Replay(result[0]), args)
        result[window] = np.concatenate([steady(frames[i:i + batch]) for i in range(0, len(frames), batch)])
    return result


@pytest.fixture(scope='module')
def night_clips():
    return {name: make(48) for name, make in CLIPS.items()}


def test_temporal_window_never_adds_flicker_and_removes_what_enhancement_adds(clips, night_clips):
    network = load_enhancer(clips['folder'])
    for name, frames in night_clips.items():
        for kind, enhance in (('network', network), ('curve', CurveEnhancer()), ('flickering', flickering(48))):
            outputs = smoothed(enhance, frames, (4, 16))
            per_frame = flicker(luma(outputs[0]), luma(frames))
            for window in (4, 16):
                steady = flicker(luma(outputs[window]), luma(frames))
                for measure, value in per_frame.items():
                    bound = value / 2 if kind == 'flickering' else value
                    assert steady[measure] <= bound, (name, kind, window, measure, steady, per_frame)
                if kind == 'curve':  # adds no flicker: the smoothing, carried along the camera, changes little
                    assert np.abs(outputs[window].astype(float) - outputs[0]).mean() < 3, (name, window)
            if kind == 'flickering':
                assert per_frame['flicker'] > 1.2, (name, per_frame)


def test_temporal_window_keeps_what_a_normalising_network_steadied(night_clips):
    """A network that normalises each frame (instance norms do) removes the input's own flicker: smoothing its colour
    gain brought that flicker back (a pan: 0.01 -> 0.93); averaging the output itself adds at most a third of the
    input's own change where the camera or an object moves (a pan: 0.01 -> 0.06, a moving object: 0.51 -> 0.85)."""
    for name, frames in night_clips.items():
        outputs = smoothed(NormalisingEnhancer(), frames, (4, 16))
        per_frame = flicker(luma(outputs[0]), luma(frames))
        for window in (4, 16):
            steady = flicker(luma(outputs[window]), luma(frames))
            for measure, value in per_frame.items():
                assert steady[measure] <= value + 0.35, (name, window, measure, steady, per_frame)


def test_smoothing_follows_a_moving_average_and_a_real_change_at_once():
    low = np.full((3, 8, 8, 3), 9, np.uint8)
    high = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (39, 79, 39)])  # gains 4, 8, 4 (with the +1)
    assert TemporalSmoother(3)(low, high)[:, 0, 0, 0].tolist() == [39, 59, 49]  # weight 1/2: 39, 59.25, 48.75
    assert (TemporalSmoother(3)(low, np.repeat(high[:1], 3, 0)) == high[0]).all()  # steady: unchanged
    frames = np.repeat(np.full((1, 30, 40, 3), 20, np.uint8), 6, 0)
    frames[3:, 5:20, 5:25] = 200  # a lamp switches on
    outputs = GainEnhancer(np.array([[4, 4, 4], [2, 2, 2]] * 3, float))(frames)
    steady = TemporalSmoother(16)(frames, outputs).astype(int)
    assert (steady[3, 9:16, 9:21] == outputs[3, 9:16, 9:21]).all()  # the lamp at once, at its full brightness
    assert outputs[2:4, 25, 30, 0].tolist() == [80, 40]  # the rest: 80 -> 40 frame by frame ...
    assert np.abs(steady[3, 25:, 30:] - steady[2, 25:, 30:]).max() <= 5  # ... steady when smoothed


def test_smoothing_does_not_depend_on_the_batches(night_clips):
    frames = night_clips['pan'][:12]
    outputs = flickering(12)(frames)
    whole = TemporalSmoother(8)(frames, outputs)
    parts = TemporalSmoother(8)
    assert (np.concatenate([parts(frames[i:i + 5], outputs[i:i + 5]) for i in range(0, 12, 5)]) == whole).all()


def test_evaluate_reports_the_flicker_of_videos(clips, tmp_path, capsys):
    frames = dark_scene(9, seed=1, size=(32, 20))
    brighter = write_clip(tmp_path / 'brighter.mkv', np.clip(frames.astype(int) + 40, 0, 255).astype(np.uint8),
                          [30, 50, 120] * 3, audio=False)
    assert evaluate.main([clips['vfr'], brighter, '--video', clips['vfr']]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '%s: flicker 1.000, static_flicker 1.000' % clips['vfr']
    reference, output = luma_frames(clips['vfr']), luma_frames(brighter)
    assert reference.shape == (9, 20, 32)
    assert lines[1] == '%s: flicker %.3f, static_flicker %.3f' % (brighter, *flicker(output, reference).values())
    assert float(lines[1].split()[2].rstrip(',')) < 0.9  # the same changes on a brighter base are smaller in log
    assert lines[2].startswith('flicker: how much the brightness changes') and '1.0: the enhancement adds no ' \
        'flicker' in lines[2] and len(lines) == 3


def corrupt_clip(path, bad=5):
    """An intra-only (MJPEG) clip of ten frames whose frame number bad has its picture data overwritten."""
    ramp = np.stack([np.full((20, 32, 3), 20 * i, np.uint8) for i in range(10)])
    write_clip(path, ramp, [40] * 10, audio=False, codec='mjpeg')
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    pos, size = packets[bad]
    data[pos + size // 4:pos + 3 * size // 4] = bytes(size // 2)
    path.write_bytes(bytes(data))
    return str(path)


def test_bad_inputs_give_one_line_and_leave_nothing_at_out(clips, tmp_path, capsys):
    folder, out = clips['folder'], str(tmp_path / 'out.mp4')
    (tmp_path / 'text.mp4').write_text('not a video')
    with av.open(str(tmp_path / 'sound.m4a'), 'w') as sound_only:
        sound_only.add_stream('aac', rate=8000, layout='mono')
        sound_only.start_encoding()
    with av.open(str(tmp_path / 'empty.mp4'), 'w') as empty:
        video = empty.add_stream('libx264', rate=24)
        video.width, video.height = 32, 20
        empty.start_encoding()
    cases = {
        ('text.mp4',): 'text.mp4: not a video FFmpeg can read',
        ('sound.m4a',): 'has no video stream',
        ('empty.mp4',): 'has no video stream',
        ('missing.mp4',): 'missing.mp4: no such file',
        (clips['static'], '--codec', 'foo'): '--codec foo: not a video encoder',
        (clips['static'], '--codec', 'aac'): '--codec aac: not a video encoder',
        (clips['static'], '--codec', 'mpeg4'): '--codec mpeg4 cannot encode the odd size 121x67',
        (clips['static'], '--batch_size', '0'): '--batch_size 0',
        (clips['static'], '--out', clips['static']): 'is the input itself',
        (clips['static'], '--out', str(tmp_path / 'out.xyz')): 'no container format for its extension',
    }
    for (source, *extra), expected in cases.items():
        source = source if os.path.isabs(source) else str(tmp_path / source)
        argv = [source, '--checkpoints', folder, '--out', out, *extra] if '--out' not in extra else \
            [source, '--checkpoints', folder, *extra]
        assert expected in refused(capsys, enhance_video.main, *argv), (expected, argv)
        assert not os.path.exists(out) and not os.path.exists(tmp_path / 'out.xyz')
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.')]
    (tmp_path / 'out.mp4').write_bytes(b'earlier work')
    assert '--out %s exists; give --overwrite' % out in refused(capsys, enhance_video.main, clips['static'],
                                                                '--checkpoints', folder, '--out', out)
    assert (tmp_path / 'out.mp4').read_bytes() == b'earlier work'


def test_every_container_keeps_the_timing_or_is_refused_before_the_model_loads(clips, tmp_path, capsys,
                                                                             monkeypatch):
    """.webm and .gif get a codec they can hold (VP9, GIF) and keep each frame's time; a container that does not
    keep them (.avi), a codec the container cannot hold, an --out folder that does not exist: one line, before the
    model loads; streams the output cannot hold (audio in a GIF, SubRip in MP4) are named on stderr."""
    frames, times, _, _ = read_clip(clips['vfr'])
    for ext in ('.webm', '.gif'):
        out = tmp_path / ('out' + ext)
        assert enhance_video.main([clips['vfr'], '--checkpoints', clips['folder'], '--out', str(out)]) == 0
        enhanced, out_times, _, _ = read_clip(out)
        assert enhanced.shape == frames.shape and np.allclose(out_times, times, atol=0.011), ext
        assert 'stream #1 of %s (subtitle, srt) is left out: a %s file cannot hold srt' % (clips['vfr'], ext) \
            in capsys.readouterr().err
    # AAC's priming puts the sound's first packet before 0: .mkv, which holds no times before 0, shifts every
    # stream by as much, and says so; .mp4 keeps the times as they are
    clip = write_clip(tmp_path / 'camera.mp4', dark_scene(6, size=(32, 20)), [40] * 6)
    frames, times, _, sound = read_clip(clip)
    lead = -sound[0][1]
    assert lead > 0.1
    for ext, shift in (('.mkv', lead), ('.mp4', 0)):
        out = tmp_path / ('sound' + ext)
        assert enhance_video.main([clip, '--checkpoints', clips['folder'], '--out', str(out)]) == 0
        _, out_times, _, out_sound = read_clip(out)
        assert np.allclose(out_times, np.add(times, shift), atol=1e-3), ext
        assert np.allclose([t for _, t in out_sound], np.add([t for _, t in sound], shift), atol=1e-3), ext
        said = ('note: the sound or subtitles of %s start at %.3f s (an encoder\'s priming), and a .mkv file holds no '
                'times before 0: every stream of %s starts %.3f s later, in sync' % (clip, -lead, out, lead))
        assert (said in capsys.readouterr().err) == bool(shift), ext
    # a last frame that lasts (3 s here) keeps its duration in .mkv and .webm; .mp4 says it does not
    clip = write_clip(tmp_path / 'pause.mkv', dark_scene(4, size=(32, 20)), [40, 40, 40, 3000], audio=False)
    for ext in ('.mkv', '.webm', '.mp4'):
        out = tmp_path / ('still' + ext)
        assert enhance_video.main([clip, '--checkpoints', clips['folder'], '--out', str(out)]) == 0
        with av.open(str(out)) as written:
            end = max(float((p.pts + p.duration) * p.time_base) for p in written.demux(written.streams.video[0])
                      if p.pts is not None)
        said = 'note: the last frame of %s lasts %.3f s less than in the input' % (out, 3.12 - end)
        assert (abs(end - 3.12) < 1e-3) != (said in capsys.readouterr().err), (ext, end)
        assert ext == '.mp4' or abs(end - 3.12) < 1e-3, (ext, end)
    monkeypatch.setattr(enhance_video, 'load', lambda args: pytest.fail('the model loaded before the refusal'))
    cases = {(str(tmp_path / 'out.avi'),): "a .avi file does not keep the frames' times",
             (str(tmp_path / 'out.webm'), '--codec', 'libx264'): '--codec libx264: a .webm file cannot hold it',
             (str(tmp_path / 'missing' / 'out.mp4'),): 'the folder %s does not exist' % (tmp_path / 'missing')}
    for (out, *extra), expected in cases.items():
        line = refused(capsys, enhance_video.main, clips['vfr'], '--checkpoints', clips['folder'], '--out', out,
                       '--overwrite', *extra)
        assert expected in line, (out, line)
    assert not os.path.exists(tmp_path / 'out.avi') and not os.path.exists(tmp_path / 'missing')
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.')]


def test_ctrl_c_leaves_nothing_at_out(clips, tmp_path, capsys, monkeypatch):
    real, calls = Enhancer.tensor, []

    def enhance_then_ctrl_c(self, batch):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, batch)

    monkeypatch.setattr(Enhancer, 'tensor', enhance_then_ctrl_c)
    out = tmp_path / 'out.mp4'
    line = refused(capsys, enhance_video.main, clips['static'], '--checkpoints', clips['folder'], '--out', str(out))
    assert line == 'error: interrupted; nothing was written to %s' % out and len(calls) == 2
    assert os.listdir(tmp_path) == []


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as a full disk


def test_a_full_disk_leaves_nothing_at_out(clips, tmp_path):
    out = tmp_path / 'out.mp4'
    result = run_script('scripts/enhance_video.py', clips['static'], '--checkpoints', clips['folder'], '--out',
                        str(out), '--crf', '0', preexec_fn=limit_file_size)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert lines[-1] == 'error: --out %s: File too large' % out
    assert os.listdir(tmp_path) == []


def test_a_frame_size_that_changes_mid_stream_is_refused_at_any_batch_size():
    """The output stream keeps one size: a frame of another size is refused in one line naming its time and both
    sizes (it used to be stretched with --batch_size 1, and a traceback with larger batches); nothing of it is
    enhanced or written."""
    from fractions import Fraction
    for batch_size in (1, 4):
        written, seen = [], []
        batches = enhance_video.FrameBatches(lambda frames: seen.append(len(frames)) or frames, batch_size,
                                             lambda image, pts, *when: written.append(pts))
        for pts in range(3):
            batches.add(np.zeros((20, 32, 3), np.uint8), pts, Fraction(1, 25))
        with pytest.raises(UserError, match=r'the frame at 0\.120 s is 48x30 where the video began at 32x20'):
            batches.add(np.zeros((30, 48, 3), np.uint8), 3, Fraction(1, 25))
        assert len(written) == sum(seen) == (3 if batch_size == 1 else 0), batch_size


def test_a_corrupt_frame_is_named_and_replaced_by_the_previous_one(clips, tmp_path, capsys):
    source = corrupt_clip(tmp_path / 'corrupt.mkv')
    out = tmp_path / 'out.mkv'
    assert enhance_video.main([source, '--checkpoints', clips['folder'], '--out', str(out), '--crf', '0']) == 0
    assert 'frame at 0.200 s of %s could not be decoded' % source in capsys.readouterr().err
    frames, times, _, _ = read_clip(out)
    assert times == [0.04 * i for i in range(10)] and len(frames) == 10
    assert np.array_equal(frames[5], frames[4]) and not np.array_equal(frames[6], frames[5])


def test_the_camera_motion_is_found_to_a_tenth_of_a_pixel():
    """Lucas-Kanade on the pyramid finds translations up to a few percent of the frame, under sensor noise and a
    global change of the light; translate() moves a field as whole-pixel moves do."""
    from clips import texture
    scene = texture(260, 200, seed=3).mean(2) + 10 + 10 * np.sin(np.arange(200) / 7)[:, None]  # both ways
    rng = np.random.default_rng(0)
    for dy, dx in ((0, 0), (3, -5), (-7, 2), (12, 9)):
        previous = scene[40:160, 50:210] + rng.normal(0, 2, (120, 160))
        current = scene[40 - dy:160 - dy, 50 - dx:210 - dx] * 1.1 + rng.normal(0, 2, (120, 160))
        found = temporal.camera_shift(torch.tensor(previous).float(), torch.tensor(current).float())
        assert np.abs(np.array(found) - (dy, dx)).max() < 0.1, (dy, dx, found)
    assert temporal.camera_shift(torch.ones(1, 9), torch.ones(1, 9)) == [0.0, 0.0]  # too thin to tell
    field = torch.arange(2 * 7 * 9, dtype=torch.float32).reshape(2, 7, 9)
    for shift in ((2, -3), (-1, 4), (0, 0), (6, 8), (-7, 0), (0, 9)):
        moved, defined = temporal.move(field, *shift)
        expected = torch.zeros_like(field)
        for y in range(7):
            for x in range(9):
                if 0 <= y - shift[0] < 7 and 0 <= x - shift[1] < 9:
                    expected[:, y, x] = field[:, y - shift[0], x - shift[1]]
        assert torch.equal(moved, expected) and torch.equal(defined, (expected != 0).any(0) | (
            torch.arange(7)[:, None] == shift[0]) & (torch.arange(9) == shift[1])), shift
        if max(abs(shift[0]), abs(shift[1])) < 5:
            assert torch.allclose(temporal.translate(field, shift)[:, defined], moved[:, defined], atol=1e-4), shift


def test_local_brightness_and_contrast_are_measured_as_said():
    flat, board = np.full((7, 7), 50.0), np.indices((7, 7)).sum(0) % 2 * 200.0
    features = temporal.describe(torch.tensor(np.stack([flat, board]))[:, None].repeat(1, 3, 1, 1).float())
    centre = features[:, :, 3, 3]  # a 5x5 square: 12 or 13 of 25 pixels at 200
    assert torch.allclose(centre[0], torch.log(torch.tensor([58.0] * 3 + [8.0] * 3)))
    mean = 12 * 200 / 25
    deviation = (12 * 200 ** 2 / 25 - mean ** 2) ** 0.5
    assert torch.allclose(centre[1], torch.log(torch.tensor([mean + 8] * 3 + [deviation + 8] * 3)), rtol=1e-5)


@pytest.mark.parametrize('size', [(121, 67), (520, 300)])  # the second above the working size: smoothed at 256 across
def test_smoothing_follows_the_camera(size):
    """On a pan the average is carried along the motion: a network that adds no flicker is barely changed (without
    the motion it was smeared by 8 grey levels), and one that adds flicker loses most of it; black stays black."""
    frames = CLIPS['pan'](24, size=size)
    curve = smoothed(CurveEnhancer(), frames, (8,))
    assert np.abs(curve[8].astype(float) - curve[0]).mean() < 2
    black = frames.copy()
    black[:, 20:30, 30:50] = 0
    assert (smoothed(flickering(24), black, (8,))[8][:, 20:30, 30:50] == 0).all()
    gains = smoothed(flickering(24), frames, (8,))
    per_frame, steady = (flicker(luma(gains[w]), luma(frames))['flicker'] for w in (0, 8))
    assert steady < per_frame / 2, (per_frame, steady)


def test_flicker_is_measured_over_the_static_pixels_too_and_refuses_what_it_cannot_compare():
    reference = np.zeros((4, 6, 10))
    reference[:, :, :5] = np.array([50, 51, 52, 53])[:, None, None]  # static: a slow change
    reference[:, :, 5:] = np.array([20, 200, 20, 200])[:, None, None]  # a light switching
    output = reference.copy()
    output[:, :, :5] = np.array([50, 60, 50, 60])[:, None, None]  # the still part made to flicker
    ratios = flicker(output, reference)
    assert ratios['static_flicker'] > 5 > ratios['flicker'] > 1
    with pytest.raises(UserError, match=r'^the clips differ in frames or size \(4x6x9, 4x6x10\); compare an output '
                                        r'with its own input$'):
        flicker(output[:, :, :9], reference)
    with pytest.raises(UserError, match='^flicker needs two frames or more, not 1$'):
        flicker(output[:1], reference[:1])
