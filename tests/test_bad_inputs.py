"""The bad inputs of the third reliability pass: each gives one line naming the file or flag, and loses nothing."""
import pytest
import torch

from helpers import load_script, save_tiny_checkpoint, write_image

enhance_script = load_script('scripts/enhance.py')


def refused(capsys, main, *argv):
    """The last line a command ends with on bad input (its exit status is not 0), without a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    code = exit_info.value.code
    assert code != 0
    return (code if isinstance(code, str) else capsys.readouterr().err).strip().splitlines()[-1]


def test_devices_that_are_not_here_are_named(tmp_path, capsys):
    folder = save_tiny_checkpoint(tmp_path)
    write_image(str(tmp_path / 'in' / 'p.png'))
    argv = [str(tmp_path / 'in'), '--checkpoints', folder, '--out', str(tmp_path / 'out'), '--device']
    missing = 'cuda:%d' % torch.cuda.device_count()
    assert refused(capsys, enhance_script.main, *argv, missing).startswith('error: --device %s: this machine has'
                                                                           % missing)
    assert refused(capsys, enhance_script.main, *argv, 'foo') == \
        'error: --device foo: not a device; use cpu, cuda, cuda:1 or mps'
    assert not (tmp_path / 'out').exists()
