"""Training options: the official flags (display, saving, schedule, losses) plus NeRCo's CLIP and edge options."""
from models.discriminators import GAN_MODES, NLayerDiscriminator
from models.edge_filter import EDGE_FILTERS, EDGE_RGB
from models.execution import CUDA_GRAPH_MODES
from models.networks import LR_POLICIES, SIDE_MULTIPLE
from .base_options import BaseOptions


class TrainOptions(BaseOptions):
    isTrain = True
    description = ('Train NeRCo on unpaired photos: <dataroot>/trainA (low-light) and trainB (normal-light).\n'
                   'Checkpoints, logs and a page of the run go to <checkpoints_dir>/<name>.')
    examples = '''examples:
  python train.py --dataroot ./dataset --name LSRW
  python train.py --dataroot ./dataset --name LSRW --val_dataroot ./val --amp bf16 --tensorboard
  python train.py --dataroot ./dataset --name LSRW --continue_train      (resume where it stopped)'''

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        self.initialize_display_and_saving(parser)
        self.initialize_validation(parser)
        parser.add_argument('--continue_train', action='store_true',
                            help='resume from the checkpoint named by --epoch / --load_iter')
        parser.add_argument('--overwrite', action='store_true',
                            help="start a new run in a folder that holds an earlier run's checkpoints, replacing them "
                                 '(without it, such a start is refused)')
        parser.add_argument('--epoch_count', type=int, default=1,
                            help='first epoch number (set automatically when --continue_train finds saved state)')
        parser.add_argument('--phase', type=str, default='train', help='reads <dataroot>/<phase>A and <phase>B')
        parser.add_argument('--n_epochs', type=int, default=100, help='# of epochs at the initial learning rate')
        parser.add_argument('--n_epochs_decay', type=int, default=200,
                            help='# of epochs over which the learning rate decays linearly to zero')
        parser.add_argument('--beta1', type=float, default=0.5, help='momentum term of Adam')
        parser.add_argument('--lr', type=float, default=2e-4, help='initial learning rate for Adam')
        parser.add_argument('--gan_mode', type=str, default='lsgan', choices=GAN_MODES,
                            help='GAN objective (wgangp here is the plain Wasserstein loss, without penalty)')
        parser.add_argument('--pool_size', type=int, default=50,
                            help='size of the buffers of generated images; 0 disables them')
        parser.add_argument('--lr_policy', type=str, default='linear', choices=LR_POLICIES,
                            help='learning rate policy')
        parser.add_argument('--lr_step_after_epoch', action='store_true',
                            help='step the learning-rate schedule at the end of each epoch, as CycleGAN does; the '
                                 'official NeRCo code steps it at the start, so its last epoch trains at rate 0')
        parser.add_argument('--lr_decay_iters', type=int, default=50, help='step policy: decay every this many epochs')
        parser.add_argument('--seed', type=int, default=None,
                            help='random seed for weights, data order, crops and flips (default: drawn at start and '
                                 'saved, so --continue_train resumes the same run exactly)')
        parser.add_argument('--nan_policy', type=str, default='stop', choices=('stop', 'skip'),
                            help='on a non-finite loss: stop the run (the last checkpoint is kept) or skip the step')
        parser.add_argument('--activation_checkpointing', action='store_true',
                            help="keep only each ResNet block's input and recompute the block in the backward pass: "
                                 'about half the training memory (float32 512x512 crops within 16 GB) for about '
                                 '20%% more time per step; same values up to rounding')
        parser.add_argument('--clip_pretrained', type=str, default='openai',
                            help='CLIP RN50 weights: openai (~/.cache/clip/RN50.pt if present, else open_clip '
                                 'fetches them), a path to RN50.pt, or none (random weights: tests and demos only)')
        parser.add_argument('--edge_filter', type=str, default='sobel', choices=EDGE_FILTERS,
                            help='high-pass filter for the detail discriminators')
        parser.add_argument('--edge_rgb', type=str, default='random', choices=EDGE_RGB,
                            help='how the 1-channel edge map becomes 3 channels: random (official: a fresh random '
                                 '1x1 convolution per call) or repeat')
        parser.add_argument('--paper_edge', action='store_true',
                            help="feed the generators' edge GAN terms the filtered images, as the paper describes "
                                 '(the official code feeds the raw images)')
        parser.add_argument('--paper_clip', action='store_true',
                            help='let the CLIP loss reach the generators, as the paper describes (the official code '
                                 'routes CLIP inputs through image pools, which detach them when --pool_size > 0)')
        return parser

    @staticmethod
    def initialize_display_and_saving(parser):
        """The flags for the live display, the loss log, the results page and checkpoint saving."""
        parser.add_argument('--display_freq', type=int, default=59456,
                            help='show training results on visdom and the HTML page every this many images; the '
                                 "official code's default, 59456, shows them rarely (e.g. 400 on a small data set)")
        parser.add_argument('--display_ncols', type=int, default=4, help='images per row in the visdom panel')
        parser.add_argument('--display_id', type=int, default=1,
                            help='visdom window id; 0 disables visdom (it is also skipped, with one warning, when '
                                 'no server answers or visdom is not installed)')
        parser.add_argument('--display_server', type=str, default='http://localhost', help='visdom server')
        parser.add_argument('--display_env', type=str, default='main', help='visdom environment name')
        parser.add_argument('--display_port', type=int, default=8097, help='visdom port')
        parser.add_argument('--update_html_freq', type=int, default=1000,
                            help='also save the displayed results to the HTML page every this many images')
        parser.add_argument('--print_freq', type=int, default=100, help='log losses every this many images')
        parser.add_argument('--no_html', action='store_true',
                            help='do not save intermediate results to checkpoints_dir/name/web/')
        parser.add_argument('--tensorboard', action='store_true',
                            help='also log losses, learning rates, validation metrics and visuals for TensorBoard, '
                                 'in checkpoints_dir/name/tensorboard/ (x axis: training images seen)')
        parser.add_argument('--wandb', type=str, default=None, metavar='PROJECT',
                            help='also log them to this Weights & Biases project (needs `pip install wandb`; '
                                 'WANDB_MODE=offline keeps the run on disk)')
        parser.add_argument('--save_latest_freq', type=int, default=5000,
                            help='save the latest checkpoint every this many images')
        parser.add_argument('--save_epoch_freq', type=int, default=5,
                            help='save a per-epoch checkpoint every this many epochs')
        parser.add_argument('--save_by_iter', action='store_true', help='name latest checkpoints by iteration')

    @staticmethod
    def initialize_validation(parser):
        """The flags of validation during training (off unless --val_dataroot is given)."""
        parser.add_argument('--val_dataroot', type=str, default=None,
                            help='validate during training on <val_dataroot>/testA (testB: optional ground truth with '
                                 'the same file names), keep the best checkpoint as best_net_*.pth; off by default')
        parser.add_argument('--val_freq', type=int, default=1, help='validate every this many epochs')
        parser.add_argument('--val_freq_iters', type=int, default=0,
                            help='also validate every this many images (for long epochs); 0: only per epoch')
        parser.add_argument('--val_max', type=int, default=0,
                            help='validate on at most this many images (the first by name); 0: all')
        parser.add_argument('--val_metric', type=str, default=None, choices=('psnr', 'ssim', 'lpips', 'niqe'),
                            help='what "best" means (default: psnr with ground truth, else niqe; lower is better for '
                                 'niqe and lpips)')
        parser.add_argument('--niqe_channel', type=str, default='gray', choices=('gray', 'y'),
                            help="what validation's NIQE sees: gray (MATLAB's rgb2gray) or y (BT.601 luma, BasicSR)")

    def check(self, parser, opt):
        BaseOptions.check(self, parser, opt)
        if 'crop' in opt.preprocess and 'resize' in opt.preprocess and opt.crop_size > opt.load_size:
            parser.error('--crop_size %d is larger than --load_size %d' % (opt.crop_size, opt.load_size))
        multiple = SIDE_MULTIPLE[opt.netG]
        if opt.crop_size % multiple:
            parser.error('--crop_size %d is not a multiple of %d (--netG %s halves the image %d times)'
                         % (opt.crop_size, multiple, opt.netG, multiple.bit_length() - 1))
        if getattr(opt, 'lambda_identity', 0) > 0 and opt.input_nc != opt.output_nc:
            parser.error('--lambda_identity %g needs --input_nc == --output_nc (or --lambda_identity 0)'
                         % opt.lambda_identity)
        if opt.lr_policy == 'plateau' and not opt.val_dataroot:
            parser.error('--lr_policy plateau steps on the validation metric: give --val_dataroot (or use linear, '
                         'step or cosine)')
        if opt.compile_mode in CUDA_GRAPH_MODES:
            parser.error('--compile_mode %s: CUDA graphs reuse their output memory at every step, but the image pools '
                         'keep generated images across steps; train with --compile_mode default or '
                         'max-autotune-no-cudagraphs' % opt.compile_mode)
        if opt.val_freq < 1 or opt.val_freq_iters < 0 or opt.val_max < 0:
            parser.error('--val_freq must be at least 1, --val_freq_iters and --val_max at least 0')
        if opt.save_epoch_freq < 1:
            parser.error('--save_epoch_freq %d: give a number of epochs, 1 or more' % opt.save_epoch_freq)
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0:
            parser.error('--n_epochs and --n_epochs_decay must be 0 or more')
        if opt.lr_policy == 'step' and opt.lr_decay_iters < 1:
            parser.error('--lr_decay_iters %d: --lr_policy step decays every this many epochs: give 1 or more'
                         % opt.lr_decay_iters)
        if opt.netD != 'pixel':
            smallest = NLayerDiscriminator.smallest_input(3 if opt.netD == 'basic' else opt.n_layers_D)
            if opt.crop_size < smallest:
                parser.error('--crop_size %d is too small for the PatchGAN discriminators (--netD %s): give %d or more'
                             % (opt.crop_size, opt.netD, smallest))
