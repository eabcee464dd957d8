"""Video files read with PyAV: opening one and its first video stream, with one line for what FFmpeg cannot read."""
import contextlib

import av

from util.util import UserError


@contextlib.contextmanager
def open_video(path):
    """(container, its first video stream) of path, opened with PyAV; a UserError naming path when it is not a video
    FFmpeg can read (also when reading fails inside the context) or has no video stream."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise UserError('%s has no video stream' % path)
            yield container, container.streams.video[0]
    except av.error.FFmpegError as exc:
        raise UserError('%s: not a video FFmpeg can read (%s)' % (path, exc.strerror or exc)) from None
