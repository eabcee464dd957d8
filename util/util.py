"""The user-facing error and the one way every command reports it; atomic file writes; strict JSON; the class
registry."""
import errno
import functools
import importlib
import json
import math
import os
import signal
import sys
import tempfile
import threading


FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)  # errors of writing, not of the command
TERMINATING = tuple(getattr(signal, name) for name in ('SIGTERM', 'SIGHUP') if hasattr(signal, name))


class UserError(Exception):
    """A problem with the user's input (file, folder or flag), reported as one line without a traceback."""


def one_line(error):
    """The message of a UserError in one line, also when torch re-raised it from a DataLoader worker process
    (then the message holds the worker's traceback, and the original message is on its last line)."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else error.__class__.__name__
    return last.split('UserError: ', 1)[-1]


def interrupt(signum, frame):
    raise KeyboardInterrupt


def command(main=None, torchrun=False):
    """Decorator for the main(argv) of every command (train.py, test.py, scripts/*.py): a UserError, or a disk
    that is full or read-only, ends the command with one line 'error: ...' on stderr and exit status 1, never a
    traceback. SIGTERM and SIGHUP (a service manager, a closed terminal) interrupt it as Ctrl-C does, so that its
    temporary files and folders are removed as they are then; an interruption ends it with one line and status 130.
    Unless torchrun (train.py), a command started by torchrun is refused in one line from rank 0 (each process would
    run the whole command, into the same files)."""
    if main is None:
        return functools.partial(command, torchrun=torchrun)

    @functools.wraps(main)
    def run(argv=None):
        if not torchrun and int(os.environ.get('WORLD_SIZE', '1')) > 1:
            if os.environ.get('RANK', '0') != '0':
                raise SystemExit(1)
            raise SystemExit('error: %s runs in one process: start it with python, not torchrun (only train.py '
                             'runs under torchrun)' % os.path.basename(sys.argv[0]))
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, interrupt) for s in TERMINATING}
        try:
            return main(argv)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr)
            raise SystemExit(130) from None
        except UserError as exc:
            raise SystemExit('error: ' + one_line(exc)) from None
        except OSError as exc:
            if exc.errno not in FULL_OR_READ_ONLY:
                raise
            where = os.path.dirname(os.path.abspath(exc.filename)) if exc.filename else 'an output folder'
            raise SystemExit('error: cannot write in %s: %s; free some space there or choose another output folder'
                             % (where, exc.strerror)) from None
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
    return run


def strict_json(obj):
    """obj as indented JSON that every parser accepts: a NaN or infinite number, for which JSON has no word, is
    written as null (a missing value)."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value
    return json.dumps(finite(obj), indent=1, allow_nan=False)


def read_json(path, hint):
    """The value in the JSON file at path; a UserError naming the file, with hint (what to do), when it cannot be
    read or parsed."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError('%s: not readable JSON (%s); %s' % (path, exc, hint)) from None


def write_temporary(path, write):
    """Call write(file) on a new hidden temporary file beside path (.<name>.<random>.tmp) that gets the mode the
    umask gives new files, fsync it and return its path; it is removed again if write fails."""
    directory = os.path.dirname(os.path.abspath(path))
    # a long name keeps its first 64 bytes, so that the temporary name stays within the file system's limit
    fd, tmp = tempfile.mkstemp(prefix='.' + os.fsdecode(os.fsencode(os.path.basename(path))[:64]) + '.',
                               suffix='.tmp', dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        os.remove(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file: the one being written
            raise OSError(exc.errno, exc.strerror, path) from None
        raise
    return tmp


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def follow_umask(path):
    """Give path, and all a folder at path holds, the mode that new files and folders get under the umask (what
    tempfile, safetensors and others make private)."""
    umask = current_umask()
    for folder, _, files in os.walk(path) if os.path.isdir(path) else ():
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)
    if os.path.isfile(path):
        os.chmod(path, 0o666 & ~umask)


def atomic_write(path, write):
    """Write path through write_temporary and a rename, so a kill at any moment leaves either the old file or the
    complete new one."""
    tmp = write_temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise


def made_again(folder, what):
    """Make folder again, with a warning naming it (what: e.g. "TensorBoard's folder"), if it was deleted while
    the run writes into it."""
    if not os.path.isdir(folder):
        os.makedirs(folder)
        print('warning: %s %s was deleted during the run; made it again, and it goes on from here' % (what, folder),
              file=sys.stderr)


def writable_folder(folder, flag):
    """Create folder if needed and check that a file can be written there; otherwise a UserError naming the flag
    (e.g. '--results_dir ./results') that chose it."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError('%s is not writable (%s)' % (flag, exc.strerror)) from None
    return folder


def find_class(package, name, kind, base, flag):
    """The subclass of base in <package>/<name>_<kind>.py named <name><kind>, ignoring case and underscores
    (CycleGAN's registry: --model NeRCo is NeRCoModel in models/NeRCo_model.py); a ValueError naming flag if
    there is none."""
    try:
        module = importlib.import_module('%s.%s_%s' % (package, name, kind))
    except ModuleNotFoundError:
        raise ValueError('%s %s: no file %s/%s_%s.py' % (flag, name, package, name, kind)) from None
    target = (name + kind).replace('_', '').lower()
    for attribute, cls in vars(module).items():
        if attribute.lower() == target and isinstance(cls, type) and issubclass(cls, base):
            return cls
    raise ValueError('%s/%s_%s.py defines no %s subclass named %s' % (package, name, kind, base.__name__, target))
