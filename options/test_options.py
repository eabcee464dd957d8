"""Test options: where results go, which checkpoint, how many images."""
import argparse
import dataclasses

from models.execution import Settings, tile_problem
from .base_options import BaseOptions
from .recorded import ARCHITECTURE_FLAGS


class TestOptions(BaseOptions):
    isTrain = False
    description = ('Enhance every image of <dataroot>/testA, each at its own size, with the checkpoints in\n'
                   '<checkpoints_dir>/<name>, into <results_dir>/<name>/test_<epoch>/ with a page showing each input\n'
                   'beside its output.')
    examples = '''examples:
  python test.py --dataroot ./dataset --name LSRW --preprocess=none
  python test.py --dataroot ./dataset --name LSRW --preprocess=none --epoch best --metrics --gpu_ids -1
  python test.py --dataroot ./photos --name LSRW --preprocess=none --tile 512      (photos too large for memory)'''

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        parser.add_argument('--results_dir', type=str, default='./results/', help='results are saved here')
        parser.add_argument('--aspect_ratio', type=float, default=1.0,
                            help='stretch saved images horizontally by this factor (1 keeps them as they are)')
        parser.add_argument('--phase', type=str, default='test', help='reads <dataroot>/<phase>A')
        parser.add_argument('--eval', action='store_true', help='put the networks in eval mode')
        parser.add_argument('--num_test', type=float, default=float('inf'), help='enhance at most this many images')
        parser.add_argument('--metrics', action='store_true',
                            help='score the results afterwards (scripts/evaluate.py): PSNR, SSIM and LPIPS against '
                                 '<dataroot>/<phase>B when it exists, NIQE always')
        parser.add_argument('--tile', type=int, default=0,
                            help='for photos too large for memory: compute layer by layer in bands of about N x N '
                                 'pixels, keeping activations in temporary files (TMPDIR); same result, no seams; '
                                 '0 (default) computes in memory')
        parser.set_defaults(load_size=parser.get_default('crop_size'))
        return parser

    def check(self, parser, opt):
        BaseOptions.check(self, parser, opt)
        if not 0 < opt.aspect_ratio < float('inf'):
            parser.error('--aspect_ratio %g: give a positive factor (1 keeps images as they are)' % opt.aspect_ratio)
        if not opt.num_test >= 1:
            parser.error('--num_test %g: give a number of images, 1 or more (default: all)' % opt.num_test)
        problem = tile_problem(opt.tile, opt.compile)
        if problem:
            parser.error(problem)


def passed_on(argv):
    """(architecture, settings) that test.py flags passed on by another command (enhance.py --options) ask for: the
    architecture flags given ({flag: value}; the others come from the run's record) and the execution settings
    (models.execution.Settings's fields, as load_enhancer takes them); a bad flag is one UserError line."""
    options = TestOptions.passed_on()
    argv = ['--dataroot', '.', *argv]
    opt = options.gather_options(argv)
    given = options.parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(ARCHITECTURE_FLAGS)))
    architecture = {flag: getattr(given, flag) for flag in ARCHITECTURE_FLAGS if getattr(given, flag) is not None}
    return architecture, {field.name: getattr(opt, field.name) for field in dataclasses.fields(Settings)}
