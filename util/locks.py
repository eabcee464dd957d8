"""A folder held by one process at a time: a lock file naming its holder (pid@host), which a later process takes
over once that holder has died on this machine."""
import contextlib
import os
import socket

from util.util import UserError


class FolderLock:
    """The lock file `name` in folder. what names the holder in messages (e.g. 'training run'), choose says how
    to pick another folder (e.g. 'another --name')."""

    def __init__(self, folder, name, what, choose):
        self.folder, self.path, self.what, self.choose = folder, os.path.join(folder, name), what, choose
        self.owner = '%d@%s' % (os.getpid(), socket.gethostname())

    def acquire(self):
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                self.remove_stale()
        with os.fdopen(fd, 'w') as f:
            f.write(self.owner)

    def remove_stale(self):
        """Remove the lock of a holder that died on this machine; a UserError if it may still be running."""
        try:
            with open(self.path) as f:
                owner = f.read().strip()
        except FileNotFoundError:
            return
        pid, _, host = owner.partition('@')
        if host == socket.gethostname() and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                os.remove(self.path)
                return
            except PermissionError:
                pass
        raise UserError('%s is in use by another %s (process %s); wait for it or stop it, or choose %s (if that run '
                        'is gone, delete %s)' % (self.folder, self.what, owner, self.choose, self.path))

    def release(self):
        """Remove the lock if this process holds it; where the folder no longer lets it be removed, it stays, and
        the next process takes it over as the lock of a dead holder."""
        with contextlib.suppress(OSError):
            with open(self.path) as f:
                mine = f.read().strip() == self.owner
            if mine:
                os.remove(self.path)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
