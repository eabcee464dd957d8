"""Enhance a low-light video with a trained NeRCo, frame by frame, keeping its timing, size, rotation and sound.

    python scripts/enhance_video.py night.mp4 --checkpoints saves/LSRW --out night_enhanced.mp4
    python scripts/enhance_video.py night.mp4 --checkpoints saves/LSRW --out out.mp4 --temporal_window 16 --device cuda

Every frame keeps its timestamp (variable frame rates stay variable), the audio and subtitle streams are copied
unchanged, and the container follows --out's extension. --temporal_window N lets the local brightness of the
enhanced frames follow a moving average over about N frames, carried along the camera's motion and reset wherever
the input itself changes (models/temporal.py), so that the enhancement adds no flicker; 0 enhances each frame
exactly as test.py enhances it as an image. The output is written
under a temporary name beside --out and renamed when complete.
"""
import argparse
import contextlib
import itertools
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import av  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from enhancer import load_enhancer  # noqa: E402
from models.execution import AMP_MODES  # noqa: E402
from models.inference import out_of_memory  # noqa: E402
from models.temporal import TemporalSmoother  # noqa: E402
from options.test_options import passed_on  # noqa: E402
from util.util import UserError, command, follow_umask  # noqa: E402
from util.video import open_video  # noqa: E402

CRF_CODECS = ('libx264', 'libx265', 'libvpx-vp9')
COPIED = ('audio', 'subtitle')
TS_NEGATIVE = 0x40000  # FFmpeg's AVFMT_TS_NEGATIVE: the container holds times before 0


def default_codec():
    """H.264 (libx264) where PyAV's FFmpeg has it, else MPEG-4 part 2, which every FFmpeg build can encode."""
    return 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'


def is_video_encoder(name):
    try:
        return av.codec.Codec(name, 'w').type == 'video'
    except (ValueError, av.error.FFmpegError):
        return False


def probe(path):
    """(frame count or 0 when unknown, display matrix of the first frame or None) of path's first video stream;
    a UserError when path is not a readable video or its video stream has no frame."""
    with open_video(path) as (container, stream):
        if stream.codec_context is None:
            raise UserError('%s: its video codec cannot be decoded by this FFmpeg' % path)
        first = next(container.decode(stream), None)
    if first is None:
        raise UserError('%s: its video stream has no frames' % path)
    matrix = [bytes(data) for data in first.side_data if data.type.name == 'DISPLAYMATRIX']
    return stream.frames, list(np.frombuffer(matrix[0], np.int32)) if matrix else None


def pixel_format(codec, width, height):
    """yuv420p, the format every player takes, or yuv444p where a side is odd (4:2:0 needs even sides)."""
    formats = [f.name for f in av.codec.Codec(codec, 'w').video_formats or ()]
    wanted = 'yuv420p' if width % 2 == 0 and height % 2 == 0 else 'yuv444p'
    if wanted in formats:
        return wanted
    if wanted == 'yuv444p':
        raise UserError('--codec %s cannot encode the odd size %dx%d; use --codec libx264' % (codec, width, height))
    return formats[0]


@contextlib.contextmanager
def trial_file(args):
    """The path of a new empty file beside --out, with its extension, for a trial of the container; removed after.
    A folder that takes no files is one line."""
    folder = os.path.dirname(os.path.abspath(args.out))
    try:
        fd, trial = tempfile.mkstemp(prefix='.trial.', suffix=os.path.splitext(args.out)[1], dir=folder)
    except OSError as exc:
        raise UserError('--out %s: cannot write in %s (%s)' % (args.out, folder, exc.strerror)) from None
    os.close(fd)
    try:
        yield trial
    finally:
        os.remove(trial)


def plan_output(args):
    """Check --out before the model loads and settle what it will hold: its folder must exist and take files, its
    extension must name a container, and --codec (by default libx264, or the container's own video codec where it
    cannot hold that: VP9 for .webm, GIF for .gif) must fit it; sets args.codec and args.copies (the indexes of the
    input's audio and subtitle streams the container can hold) and names on stderr each stream left out."""
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise UserError('--out %s: the folder %s does not exist; create it or choose another --out'
                        % (args.out, folder))
    ext = os.path.splitext(args.out)[1]
    with trial_file(args) as trial:
        try:
            container = av.open(trial, 'w')
        except ValueError:
            raise UserError('--out %s: no container format for its extension; use e.g. .mp4 or .mkv' % args.out) \
                from None
        with container:
            holds = container.supported_codecs
            negative_times = container.format.flags & TS_NEGATIVE
            if args.codec is None:
                args.codec = next((c for c in (default_codec(), container.default_video_codec, 'mpeg4')
                                   if c in holds and is_video_encoder(c)), None)
                if args.codec is None:
                    raise UserError('--out %s: a %s file cannot hold video; use e.g. .mp4 or .mkv' % (args.out, ext))
            elif args.codec not in holds:
                raise UserError('--codec %s: a %s file cannot hold it; leave --codec out (the container\'s own: %s) '
                                'or choose another --out' % (args.codec, ext, container.default_video_codec))
    args.copies = set()
    with open_video(args.input) as (source, video):
        for stream in source.streams:
            codec = stream.codec_context.name if stream.codec_context else '?'
            if stream.index == video.index:
                continue
            if stream.type in COPIED and codec in holds:
                args.copies.add(stream.index)
                continue
            why = ('a %s file cannot hold %s' % (ext, codec) if stream.type in COPIED else
                   'only the first video stream, audio and subtitles are carried over')
            print('note: stream #%d of %s (%s, %s) is left out: %s' % (stream.index, args.input, stream.type, codec,
                                                                       why), file=sys.stderr)
        lead = -min([first_time(source, index) for index in args.copies] + [0])
        if lead > 0 and not negative_times:
            print('note: the sound or subtitles of %s start at %.3f s (an encoder\'s priming), and a %s file holds '
                  'no times before 0: every stream of %s starts %.3f s later, in sync'
                  % (args.input, -lead, ext, args.out, lead), file=sys.stderr)


def first_time(source, index):
    """The time, in seconds, of the first packet of the stream index of source (which is left at its start)."""
    try:
        packet = next((p for p in source.demux(source.streams[index]) if p.pts is not None), None)
        return float(packet.pts * packet.time_base) if packet else 0.0
    finally:
        source.seek(0)


def check_timing(args, trial_frames=8):
    """Refuse --out's container when it does not keep each frame's time (AVI, MPEG-PS...): a trial encode of black
    frames at the times of the input's first frames, beside --out, read back and compared, before the model
    loads."""
    with trial_file(args) as trial:
        try:
            with av.open(args.input) as source:
                writer = Writer(trial, source, args, None, copies=())
                packets = (p for p in source.demux(source.streams.video[0]) if p.pts is not None)
                times = sorted((p.pts, p.time_base) for p in itertools.islice(packets, trial_frames))
                black = np.zeros((writer.video.height, writer.video.width, 3), np.uint8)
                for pts, time_base in times:
                    writer.write(black, pts, time_base)
                writer.close()
            with av.open(trial) as written:
                kept = sorted(float(f.pts * f.time_base) for f in written.decode(written.streams.video[0]))
        except av.error.FFmpegError as exc:
            raise UserError('--out %s: a %s file cannot take this video (%s); use e.g. .mp4 or .mkv'
                            % (args.out, os.path.splitext(args.out)[1], exc.strerror or exc)) from None
    wanted = sorted(float(pts * time_base) for pts, time_base in times)
    if len(kept) != len(wanted) or not np.allclose(kept, wanted, atol=0.011):  # GIF keeps centiseconds
        raise UserError('--out %s: a %s file does not keep the frames\' times (%s s written, %s s read back); use '
                        '.mp4, .mkv or .webm' % (args.out, os.path.splitext(args.out)[1],
                                                 ', '.join('%.3f' % t for t in wanted[:4]),
                                                 ', '.join('%.3f' % t for t in kept[:4])))


class Writer:
    """The output container: the enhanced video stream and copies of the input's audio and subtitle streams that
    plan_output chose (copies, by default args.copies)."""

    def __init__(self, path, source, args, matrix, copies=None):
        self.container = av.open(path, 'w')
        video = source.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        self.video = self.container.add_stream(args.codec, rate=video.average_rate or video.guessed_rate or 25)
        self.video.width, self.video.height = width, height
        self.video.pix_fmt = pixel_format(args.codec, width, height)
        self.video.time_base = self.video.codec_context.time_base = video.time_base
        if args.codec in CRF_CODECS:
            self.video.options = {'crf': str(args.crf), **({'b': '0'} if args.codec == 'libvpx-vp9' else {})}
        if matrix is not None:
            self.video.set_display_matrix(matrix)
        copies = args.copies if copies is None else copies
        self.copies = {s.index: self.container.add_stream_from_template(s) for s in source.streams
                       if s.index in copies}
        self.durations, self.end = {}, 0  # the end: where the last frame's time is up

    def copy(self, packet):
        if packet.dts is not None:
            packet.stream = self.copies[packet.stream.index]
            self.container.mux(packet)

    def write(self, image, pts, time_base, duration=None):
        frame = av.VideoFrame.from_ndarray(image, format='rgb24')
        frame.pts, frame.time_base = pts, time_base
        if duration:
            self.durations[pts * time_base] = duration * time_base
        self.mux(self.video.encode(frame))

    def mux(self, packets):
        for packet in packets:  # each frame keeps its duration, which the encoder would take from the frame rate
            duration = self.durations.pop(packet.pts * packet.time_base, None)
            if duration:
                packet.duration = round(duration / packet.time_base)
            self.end = max(self.end, (packet.pts + packet.duration) * packet.time_base)
            self.container.mux(packet)

    def close(self):
        self.mux(self.video.encode(None))
        self.container.close()


class FrameBatches:
    """Enhances frames in batches of batch_size and hands each output, in order and with its timestamp, to write.
    A frame that could not be decoded (image None) repeats the previous enhanced frame; a frame of another size than
    the first is refused (the output stream has one size)."""

    def __init__(self, enhance, batch_size, write):
        self.enhance, self.batch_size, self.write = enhance, batch_size, write
        self.pending, self.previous, self.count, self.size = [], None, 0, None

    def add(self, image, pts, time_base, duration=None):
        if image is not None:
            self.size = self.size or image.shape[:2]
            if image.shape[:2] != self.size:
                raise UserError('the frame at %.3f s is %dx%d where the video began at %dx%d: the output keeps one '
                                'size; cut the video where its size changes and enhance each part'
                                % (float(pts * time_base) if pts is not None else float('nan'), image.shape[1],
                                   image.shape[0], self.size[1], self.size[0]))
        self.pending.append((image, pts, time_base, duration))
        if len(self.pending) == self.batch_size:
            self.flush()

    def flush(self):
        images = [image for image, *_ in self.pending if image is not None]
        outputs = iter(self.enhance(np.stack(images)) if images else ())
        for image, *when in self.pending:
            self.previous = next(outputs) if image is not None else self.previous
            if self.previous is not None:
                self.write(self.previous, *when)
                self.count += 1
        self.pending = []


def batch_enhancer(enhancer, args):
    """A function from a stack of RGB frames (N, H, W, 3) uint8 to their enhanced versions, in order (with
    --temporal_window, each depends on the frames before it)."""
    smoother = TemporalSmoother(args.temporal_window) if args.temporal_window else None

    def enhance(frames):
        try:
            enhanced = enhancer(frames)
        except (MemoryError, RuntimeError) as exc:
            device = out_of_memory(exc)
            if device is None:
                raise
            raise UserError('out of %s memory at %dx%d with --batch_size %d; try a smaller --batch_size, --tile 512, '
                            '--amp bf16 or --device cpu' % (device, frames.shape[2], frames.shape[1],
                                                            args.batch_size)) from None
        return smoother(frames, enhanced) if smoother else enhanced
    return enhance


def frame_time(packet):
    return float(packet.pts * packet.time_base) if packet.pts is not None else float('nan')


def transcode(enhance, args, target, frames, matrix):
    """Enhance args.input's video stream into target (a new file); returns the number of frames written."""
    with av.open(args.input) as source:
        video = source.streams.video[0]
        writer = Writer(target, source, args, matrix)
        progress = tqdm(total=frames or None, desc='enhancing', unit='frame', file=sys.stdout, dynamic_ncols=True)
        batches = FrameBatches(enhance, args.batch_size, writer.write)
        for packet in source.demux(video, *(s for s in source.streams if s.index in writer.copies)):
            if packet.stream.index != video.index:
                writer.copy(packet)
                continue
            try:
                decoded = [(f.to_ndarray(format='rgb24'), f.pts, f.time_base, f.duration) for f in packet.decode()]
            except av.error.InvalidDataError as exc:
                what = 'repeated the previous enhanced frame' if batches.previous is not None or batches.pending \
                    else 'dropped it (no earlier frame to repeat)'
                tqdm.write('frame at %.3f s of %s could not be decoded (%s); %s' % (
                    frame_time(packet), args.input, exc.strerror or exc, what), file=sys.stderr)
                decoded = [(None, packet.pts, packet.time_base, packet.duration)]
            for frame in decoded:
                batches.add(*frame)
                progress.update()
        batches.flush()
        progress.close()
        writer.close()
    last_frame_kept(target, writer.end, args.out)
    return batches.count


def last_frame_kept(path, end, out):
    """Say so where the video written at path ends before end (MP4 and MOV take the last frame's duration from the
    last frame in the encoder's order, which B-frames make another than the last shown)."""
    with av.open(path) as written:
        kept = max(((p.pts + p.duration) * p.time_base for p in written.demux(written.streams.video[0])
                    if p.pts is not None), default=end)
    if end - kept > 0.001:
        print('note: the last frame of %s lasts %.3f s less than in the input (a %s file takes the last frame\'s '
              'duration from the encoder\'s frame order); .mkv and .webm keep it' % (out, end - kept,
                                                                                os.path.splitext(out)[1]),
              file=sys.stderr)


def check_paths(args):
    if not os.path.isfile(args.input):
        raise UserError('%s: no such file' % args.input)
    if os.path.realpath(args.out) == os.path.realpath(args.input):
        raise UserError('--out %s is the input itself; choose another file name' % args.out)
    if os.path.exists(args.out) and not args.overwrite:
        raise UserError('--out %s exists; give --overwrite to replace it' % args.out)


def load(args):
    """The enhancer for args.checkpoints, with the test.py flags given (an ONNX file refuses them in one line)."""
    options = ['--amp', args.amp] * (args.amp != 'none') + ['--tile', str(args.tile)] * bool(args.tile)
    architecture, settings = passed_on(options + ['--compile'] * args.compile + args.options)
    return load_enhancer(args.checkpoints, args.epoch, args.device, architecture=architecture, **settings)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='the video to enhance (any container and codec FFmpeg reads)')
    parser.add_argument('--checkpoints', required=True,
                        help='folder with <epoch>_net_{G_A,Pre,H}.pth (e.g. saves/LSRW), a Hub-layout folder or a '
                             '.onnx file (scripts/export.py)')
    parser.add_argument('--out', required=True, help='the enhanced video; its extension chooses the container')
    parser.add_argument('--overwrite', action='store_true', help='replace --out if it exists')
    parser.add_argument('--epoch', default='latest',
                        help='which checkpoint: latest, best (the best validation score) or an epoch number')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 or mps')
    parser.add_argument('--batch_size', type=int, default=4, help='frames per pass through the networks')
    parser.add_argument('--temporal_window', type=int, default=0,
                        help='against flicker: the local brightness of the enhanced frames follows a moving average '
                             'over about N frames, except where the input itself changes (models/temporal.py); 0 '
                             '(default) enhances each frame on its own')
    parser.add_argument('--codec',
                        help='video encoder (default %s, or the container\'s own where it cannot hold that: VP9 for '
                             '.webm, GIF for .gif); the size is kept, odd sides in yuv444p' % default_codec())
    parser.add_argument('--crf', type=int, default=18,
                        help='quality for libx264, libx265 and libvpx-vp9: 0 lossless, 18 (default) visually '
                             'lossless, higher is smaller; other codecs use their own defaults')
    parser.add_argument('--amp', default='none', choices=AMP_MODES, help='mixed precision on a GPU')
    parser.add_argument('--compile', action='store_true', help='torch.compile the networks (one size per clip)')
    parser.add_argument('--tile', type=int, default=0, help='compute out of core in bands of about N x N pixels')
    parser.add_argument('--options', nargs=argparse.REMAINDER, default=[], help='further test.py flags')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch_size %d: give 1 or more' % args.batch_size)
    if args.temporal_window < 0:
        parser.error('--temporal_window %d: give a number of frames, or 0 for none' % args.temporal_window)
    if args.codec is not None and not is_video_encoder(args.codec):
        parser.error('--codec %s: not a video encoder of this FFmpeg; try %s' % (args.codec, default_codec()))
    return args


@command
def main(argv=None):
    args = parse(argv)
    check_paths(args)
    frames, matrix = probe(args.input)
    plan_output(args)
    check_timing(args)
    enhancer = load(args)
    folder = os.path.dirname(os.path.abspath(args.out))
    name, ext = os.path.splitext(os.path.basename(args.out))
    fd, target = tempfile.mkstemp(prefix='.%s.' % name[:64], suffix='.partial' + ext, dir=folder)
    os.close(fd)
    try:
        count = transcode(batch_enhancer(enhancer, args), args, target, frames, matrix)
        follow_umask(target)
        os.replace(target, args.out)
    except KeyboardInterrupt:
        raise UserError('interrupted; nothing was written to %s' % args.out) from None
    except OSError as exc:
        raise UserError('--out %s: %s' % (args.out, exc.strerror or exc)) from None
    finally:
        if os.path.exists(target):
            os.remove(target)
    print('enhanced %d frame(s) of %s into %s' % (count, args.input, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
