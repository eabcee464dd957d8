"""Options shared by training and testing: parsing and checking them, and saving them beside a run."""
import argparse
import os

import data
import models
from models.execution import AMP_MODES, COMPILE_MODES
from models.networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS
from util import distributed
from util.util import UserError, atomic_write, strict_json

PREPROCESS = ('resize_and_crop', 'crop', 'scale_width', 'scale_width_and_crop', 'none')


MAX_LOAD_SIZE = 16384  # a 16384 x 16384 image takes 3 GB as float32 RGB, before the networks see it

# the headings of --help, each with its flags (every flag has one)
GROUPS = {
    'data (the images, and how they are read)': (
        'dataroot', 'phase', 'dataset_mode', 'direction', 'preprocess', 'load_size', 'crop_size', 'no_flip',
        'batch_size', 'serial_batches', 'max_dataset_size', 'num_threads', 'num_test'),
    'model (the networks and their checkpoints)': (
        'name', 'checkpoints_dir', 'suffix', 'epoch', 'load_iter', 'model', 'netG', 'ngf', 'norm', 'no_dropout',
        'input_nc', 'output_nc', 'netD', 'ndf', 'n_layers_D', 'netH', 'init_type', 'init_gain', 'eval'),
    'training (schedule, losses, resuming)': (
        'continue_train', 'overwrite', 'epoch_count', 'n_epochs', 'n_epochs_decay', 'lr', 'beta1', 'lr_policy',
        'lr_step_after_epoch', 'lr_decay_iters', 'gan_mode', 'pool_size', 'lambda_A', 'lambda_B', 'lambda_identity',
        'clip_pretrained', 'edge_filter', 'edge_rgb', 'paper_edge', 'paper_clip', 'seed', 'nan_policy'),
    'validation (scores while training, the best checkpoint)': (
        'val_dataroot', 'val_freq', 'val_freq_iters', 'val_max', 'val_metric', 'niqe_channel', 'metrics'),
    'logging (progress, pages, checkpoints saved)': (
        'print_freq', 'display_freq', 'update_html_freq', 'no_html', 'tensorboard', 'wandb', 'display_id',
        'display_server', 'display_env', 'display_port', 'display_ncols', 'display_winsize', 'save_latest_freq',
        'save_epoch_freq', 'save_by_iter', 'results_dir', 'aspect_ratio', 'verbose'),
    'execution (devices, precision, speed, memory)': (
        'gpu_ids', 'amp', 'channels_last', 'compile', 'compile_mode', 'activation_checkpointing', 'tile'),
}
GROUP_OF = {flag: title for title, flags in GROUPS.items() for flag in flags}
# accepted by test.py, as by the official one, but meaningless there: left out of its --help
TRAINING_ONLY = ('ndf', 'netD', 'n_layers_D', 'netH', 'init_type', 'init_gain', 'no_flip', 'load_size', 'crop_size',
                 'serial_batches')


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help with each flag's default, unless it has none or its help already speaks of it."""

    def _get_help_string(self, action):
        text = action.help or ''
        if action.default in (None, False, argparse.SUPPRESS) or 'default' in text:
            return text
        return text + ' (default: %(default)s)'


class Grouped:
    """A parser whose add_argument files each flag under its heading of GROUPS (and, for test.py, hides the
    training-only ones from --help); everything else is the parser's own."""

    def __init__(self, parser, is_train):
        self.parser, self.is_train = parser, is_train
        self.groups = {title: parser.add_argument_group(title) for title in GROUPS}

    def add_argument(self, *names, **kwargs):
        flag = names[0].lstrip('-')
        if flag not in GROUP_OF:
            raise ValueError('--%s: give it a heading in options.base_options.GROUPS' % flag)
        if not self.is_train and flag in TRAINING_ONLY:
            kwargs['help'] = argparse.SUPPRESS
        return self.groups[GROUP_OF[flag]].add_argument(*names, **kwargs)

    def __getattr__(self, name):
        return getattr(self.parser, name)


class PassedOnParser(argparse.ArgumentParser):
    """The parser of flags that another command passes on (enhance.py --options, load_enhancer's options): a bad
    flag is a UserError naming them, not this parser's usage."""

    def error(self, message):
        raise UserError('--options: %s' % message)


class BaseOptions:
    """Defines the shared flags; subclasses add theirs in initialize() and set isTrain."""

    isTrain = False
    parser_class = argparse.ArgumentParser
    description = examples = None

    @classmethod
    def passed_on(cls):
        """Options whose flags come from another command: a bad flag is then one UserError line."""
        options = cls()
        options.parser_class = PassedOnParser
        return options

    def initialize(self, parser):
        parser.add_argument('--dataroot', required=True,
                            help='folder with trainA (low-light) and trainB (normal-light photos, unpaired)'
                            if self.isTrain else 'folder with testA, the low-light images to enhance (testB '
                                                 'optional: ground truth with the same file names, for --metrics)')
        parser.add_argument('--name', type=str, default='experiment_name',
                            help='name of the experiment; checkpoints go to checkpoints_dir/name')
        parser.add_argument('--gpu_ids', type=str, default='0',
                            help='GPU ids, e.g. 0 or 0,1,2; -1 for CPU. Without CUDA the run falls back to MPS or CPU')
        parser.add_argument('--checkpoints_dir', type=str, default='./saves', help='models are saved here')
        parser.add_argument('--model', type=str, default='NeRCo', help='model class, models/<model>_model.py')
        parser.add_argument('--dataset_mode', type=str, default='unaligned' if self.isTrain else 'unaligned_test',
                            help='dataset class, data/<dataset_mode>_dataset.py')
        parser.add_argument('--input_nc', type=int, default=3, help='# of input image channels')
        parser.add_argument('--output_nc', type=int, default=3, help='# of output image channels')
        parser.add_argument('--ngf', type=int, default=64, help='# of generator filters in the first conv layer')
        parser.add_argument('--ndf', type=int, default=64, help='# of discriminator filters in the first conv layer')
        parser.add_argument('--netD', type=str, default='basic', choices=DISCRIMINATORS,
                            help='discriminator: basic (70x70 PatchGAN), n_layers (see --n_layers_D), pixel')
        parser.add_argument('--netG', type=str, default='resnet_9blocks', choices=GENERATORS,
                            help='architecture of the enhancer G_A and the degrader G_B')
        parser.add_argument('--netH', type=str, default='resnet_9blocks',
                            help='accepted for compatibility; as in the official code it has no effect (H is always '
                                 'the 3-block attention extractor)')
        parser.add_argument('--n_layers_D', type=int, default=3, help='only used if netD==n_layers')
        parser.add_argument('--norm', type=str, default='instance', choices=NORMS, help='normalisation layers')
        parser.add_argument('--init_type', type=str, default='normal', choices=INIT_TYPES,
                            help='network initialisation')
        parser.add_argument('--init_gain', type=float, default=0.02,
                            help='scaling factor for normal, xavier and orthogonal init')
        parser.add_argument('--no_dropout', action='store_true', help='no dropout for the generator (NeRCo default)')
        parser.add_argument('--amp', type=str, default='none', choices=AMP_MODES,
                            help='mixed precision (autocast) for every network, CLIP included: bf16, or fp16 with a '
                                 'gradient scaler when training; none computes in float32 as the official code')
        parser.add_argument('--channels_last', action='store_true',
                            help='keep convolution weights and activations in channels-last (NHWC) memory layout, '
                                 'which tensor cores on GPUs prefer (mostly with --amp); values are unchanged. '
                                 'Inference on the CPU always runs channels-last')
        parser.add_argument('--compile', action='store_true',
                            help='run the networks through torch.compile: faster once compiled, but the first call '
                                 'compiles for a minute or more (see docs/PERFORMANCE.md); every image size shares '
                                 'one compilation')
        parser.add_argument('--compile_mode', type=str, default='default', choices=COMPILE_MODES,
                            help="torch.compile's mode with --compile; reduce-overhead and max-autotune use CUDA "
                                 'graphs (CUDA only, inference only)')
        parser.add_argument('--direction', type=str, default='AtoB', choices=('AtoB', 'BtoA'),
                            help='AtoB enhances the low-light (A) images, as NeRCo is trained to')
        parser.add_argument('--serial_batches', action='store_true',
                            help='take images in order (and pair B with A by index) instead of at random')
        parser.add_argument('--num_threads', default=4, type=int, help='# of data loading worker processes')
        parser.add_argument('--batch_size', type=int, default=1, help='input batch size')
        parser.add_argument('--load_size', type=int, default=512, help='scale images to this size')
        parser.add_argument('--crop_size', type=int, default=512, help='then crop to this size')
        parser.add_argument('--max_dataset_size', type=float, default=float('inf'),
                            help='use at most this many images from each folder')
        parser.add_argument('--preprocess', type=str, default='resize_and_crop', choices=PREPROCESS,
                            help='scaling and cropping at load time; at test time every choice keeps each image at '
                                 'its own size unless it names a resize')
        parser.add_argument('--no_flip', action='store_true', help='do not flip images for data augmentation')
        parser.add_argument('--display_winsize', type=int, default=512, help='image width on the HTML pages')
        parser.add_argument('--epoch', type=str, default='latest',
                            help='which checkpoint to load: latest, best (the best validation score) or an epoch '
                                 'number')
        parser.add_argument('--load_iter', type=int, default=0,
                            help='if > 0, load the checkpoint saved at this iteration (iter_<load_iter>)')
        parser.add_argument('--verbose', action='store_true', help='print the networks')
        parser.add_argument('--suffix', default='', type=str,
                            help='appended to --name, formatted with the options, e.g. {netG}_size{load_size}')
        return parser

    def gather_options(self, argv):
        parser = Grouped(self.parser_class(formatter_class=HelpFormatter, description=self.description,
                                           epilog=self.examples, usage='%(prog)s --dataroot DATAROOT [--name NAME] '
                                                                       '[flags below]'), self.isTrain)
        parser = self.initialize(parser)
        opt, _ = parser.parse_known_args(argv)
        try:
            models.get_option_setter(opt.model)(parser, self.isTrain)
        except ValueError as exc:
            parser.error(str(exc))
        opt, _ = parser.parse_known_args(argv)
        try:
            data.get_option_setter(opt.dataset_mode)(parser, self.isTrain)
        except ValueError as exc:
            parser.error(str(exc))
        self.parser = parser
        opt = parser.parse_args(argv)
        self.check(parser, opt)
        return opt

    def check(self, parser, opt):
        """Reject option combinations that cannot work, naming the flag."""
        for flag in ('batch_size', 'ngf', 'ndf', 'load_size', 'crop_size'):
            if getattr(opt, flag) < 1:
                parser.error('--%s must be at least 1' % flag)
        if opt.load_size > MAX_LOAD_SIZE and opt.preprocess != 'none':
            parser.error('--load_size %d: images are scaled to this size first (%s); give at most %d'
                         % (opt.load_size, opt.preprocess, MAX_LOAD_SIZE))
        for flag in ('input_nc', 'output_nc'):
            if getattr(opt, flag) != 3:
                parser.error('--%s %d: NeRCo reads and writes RGB images, so only 3 works' % (flag, getattr(opt, flag)))
        if opt.num_threads < 0:
            parser.error('--num_threads %d: give 0 (load in the main process) or more' % opt.num_threads)
        if not opt.max_dataset_size >= 1:
            parser.error('--max_dataset_size %s: give a number of images, 1 or more (default: all)'
                         % opt.max_dataset_size)
        try:
            opt.suffix.format(**vars(opt))
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            parser.error('--suffix %s: %s; write option names in braces, e.g. {netG}_size{load_size}, and a literal '
                         'brace as {{ or }}' % (opt.suffix, 'no option %s' % exc if isinstance(exc, KeyError) else exc))
        if opt.compile_mode != 'default' and not opt.compile:
            parser.error('--compile_mode %s: give --compile too' % opt.compile_mode)

    def save(self, opt, folder):
        """Write the options to folder/{phase}_opt.txt (the official format, marking values that differ from the
        default) and folder/{phase}_opt.json (what load_enhancer reads); print the text with --verbose."""
        lines = ['----------------- Options ---------------']
        for k, v in sorted(vars(opt).items()):
            default = self.parser.get_default(k)
            comment = '\t[default: %s]' % default if v != default and default is not None else ''
            lines.append('{:>25}: {:<30}{}'.format(str(k), str(v), comment))
        lines.append('----------------- End -------------------')
        message = '\n'.join(lines)
        if opt.verbose:
            print(message)
        values = {k: v for k, v in vars(opt).items() if isinstance(v, (str, int, float, bool, list, type(None)))}
        try:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, '%s_opt' % opt.phase)
            atomic_write(path + '.txt', lambda f: f.write((message + '\n').encode()))
            atomic_write(path + '.json', lambda f: f.write(strict_json(values).encode()))
        except OSError as exc:
            raise UserError('%s is not writable (%s)' % (folder, exc.strerror)) from None

    def parse(self, argv=None):
        """Parse argv (sys.argv[1:] when None) and check the options; --gpu_ids becomes the list of requested
        GPU ids (util.runtime.setup then picks the device)."""
        opt = self.gather_options(argv)
        opt.isTrain = self.isTrain
        if opt.suffix:
            opt.name = opt.name + '_' + opt.suffix.format(**vars(opt))
        try:
            opt.gpu_ids = [int(i) for i in opt.gpu_ids.split(',') if int(i) >= 0]
        except ValueError:
            self.parser.error('--gpu_ids %s: give comma-separated integers, or -1 for CPU' % opt.gpu_ids)
        if opt.compile and len(opt.gpu_ids) > 1 and not distributed.launched_by_torchrun():
            self.parser.error('--compile with several --gpu_ids in one process (DataParallel) is not supported: '
                              'launch one process per GPU with torchrun')
        self.opt = opt
        return opt
