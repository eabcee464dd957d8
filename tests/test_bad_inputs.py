"""The bad inputs of the third reliability pass: each gives one line naming the file or flag, and loses nothing."""
import pytest
import torch

from conftest import build_model
from helpers import load_script, save_tiny_checkpoint, write_image
from options.test_options import TestOptions
from options.train_options import TrainOptions

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


TRAIN_FLAGS = [
    (['--save_epoch_freq', '0'], '--save_epoch_freq 0: give a number of epochs, 1 or more'),
    (['--n_epochs_decay', '-1'], '--n_epochs and --n_epochs_decay must be 0 or more'),
    (['--lr_policy', 'step', '--lr_decay_iters', '0'], '--lr_decay_iters 0: --lr_policy step decays every'),
    (['--crop_size', '20', '--load_size', '20'], '--crop_size 20 is too small for the PatchGAN discriminators '
                                                 '(--netD basic): give 24 or more'),
    (['--netD', 'n_layers', '--n_layers_D', '4', '--crop_size', '44'], '--crop_size 44 is too small for the '
                                                                      'PatchGAN discriminators (--netD n_layers): give 48'),
    (['--suffix', '{nosuch}'], "--suffix {nosuch}: no option 'nosuch'"),
    (['--suffix', 'a{'], "--suffix a{: Single '{' encountered"),
    (['--max_dataset_size', 'nan'], '--max_dataset_size nan: give a number of images, 1 or more'),
    (['--num_threads', '-1'], '--num_threads -1: give 0'),
    (['--input_nc', '1', '--output_nc', '1'], '--input_nc 1: NeRCo reads and writes RGB images, so only 3 works'),
    (['--output_nc', '4', '--lambda_identity', '0'], '--output_nc 4: NeRCo reads and writes RGB images'),
]
TEST_FLAGS = [
    (['--aspect_ratio', '0'], '--aspect_ratio 0: give a positive factor'),
    (['--num_test', '0'], '--num_test 0: give a number of images, 1 or more'),
]


@pytest.mark.parametrize('options, argv, message', [(TrainOptions, *case) for case in TRAIN_FLAGS] +
                         [(TestOptions, *case) for case in TEST_FLAGS])
def test_flags_that_cannot_work_are_refused_at_parse_time(tmp_path, capsys, options, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        options().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path)] + argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split('error: ', 1)[1].startswith(message)


def test_the_smallest_crop_trains(tmp_path):
    opt = TrainOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), '--ngf', '8',
                                '--ndf', '8', '--crop_size', '24', '--load_size', '24', '--gpu_ids', '-1',
                                '--clip_pretrained', 'none', '--display_id', '0'])
    model = build_model(opt)
    model.set_input({'A': torch.rand(1, 3, 24, 24) * 2 - 1, 'B': torch.rand(1, 3, 24, 24) * 2 - 1,
                     'A_paths': ['a'], 'B_paths': ['b']})
    model.optimize_parameters()
    assert all(torch.isfinite(getattr(model, 'loss_' + name)) for name in ('D_A', 'D_B_edge', 'G_A'))
