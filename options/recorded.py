"""The architecture a run recorded (train_opt.json, ours, or train_opt.txt, the official code's), as flags, so that
a checkpoint is rebuilt with the networks it was trained with."""
import dataclasses
import os

from models.nerco import Architecture
from util.util import UserError, read_json

ARCHITECTURE_FLAGS = tuple(field.name for field in dataclasses.fields(Architecture))


def read_text_options(path):
    """{flag: value as text} from a train_opt.txt (ours, or the official code's)."""
    values = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition(': ')
            if sep:
                values[key] = value.split('\t')[0].strip()
    return values


def architecture_argv(values):
    """The architecture flags among values ({flag: value}) as command-line arguments."""
    argv = []
    for key in ARCHITECTURE_FLAGS:
        if key == 'no_dropout':
            argv += ['--no_dropout'] if str(values.get(key)) == 'True' else []
        elif key in values:
            argv += ['--' + key, str(values[key])]
    return argv


def record_path(folder):
    """The record of the run in folder: train_opt.json (ours), else train_opt.txt (the official code's); None when
    neither is there."""
    for path in (os.path.join(folder, 'train_opt' + ext) for ext in ('.json', '.txt')):
        if os.path.isfile(path):
            return path
    return None


def recorded_options(folder):
    """{flag: value} of the run in folder (record_path; from train_opt.txt values as text); empty when it recorded
    none."""
    path = record_path(folder)
    if path is None:
        return {}
    if path.endswith('.txt'):
        return read_text_options(path)
    values = read_json(path, 'fix it from train_opt.txt beside it, or delete it to use train_opt.txt')
    if not isinstance(values, dict):
        raise UserError('%s: not the options of a run (a JSON object of flags); fix or delete it' % path)
    return values


def saved_architecture(folder):
    """The architecture flags of the run in folder (recorded_options), as command-line arguments."""
    return architecture_argv(recorded_options(folder))
