"""NeRCo: NRN, mask extractor, enhancer / degrader dual loop, and the colour, detail and text-driven discriminators."""
import itertools

import torch

from util import distributed
from .image_pool import ImagePool
from . import execution, networks
from .base_model import BaseModel
from .discriminators import GANLoss
from .edge_filter import EdgeFilter
from .nerco import Architecture, NeRCoInference
from .text_discriminator import HIGH, LOW, TextDiscriminator, load_clip


G_LOSSES = ('G_A', 'G_B', 'cycle_A', 'cycle_B', 'idt_A', 'idt_B', 'D_A_CLIP', 'D_B_CLIP', 'PreConsis', 'H', 'G_A_edge',
            'G_B_edge')
D_LOSSES = ('D_A', 'D_B', 'D_A_edge', 'D_B_edge')


class NeRCoModel(BaseModel):
    """Unpaired low-light enhancement (Yang et al., ICCV 2023). Domain A is low-light, domain B normal-light.

    Inference runs Pre, H and G_A only: fake_B = G_A(cat(real_A, Pre(real_A)) * mask). Training adds the degrader
    G_B, the image discriminators D_A / D_B, the high-pass discriminators D_A_edge / D_B_edge and the frozen CLIP.
    """

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(no_dropout=True)
        if is_train:
            parser.add_argument('--lambda_A', type=float, default=10.0, help='weight for cycle loss (A -> B -> A)')
            parser.add_argument('--lambda_B', type=float, default=10.0, help='weight for cycle loss (B -> A -> B)')
            parser.add_argument('--lambda_identity', type=float, default=0.5,
                                help='weight of the identity losses, relative to lambda_A / lambda_B')
        return parser

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        self.loss_names = ['D_A', 'G_A', 'cycle_A', 'idt_A', 'D_B', 'G_B', 'cycle_B', 'idt_B', 'D_A_edge',
                           'D_B_edge', 'D_A_CLIP', 'D_B_CLIP', 'PreConsis', 'H']
        self.progress_names = ['G_A', 'cycle_A', 'D_A', 'H']
        if self.isTrain:
            self.model_names = ['G_A', 'G_B', 'D_A_edge', 'D_B_edge', 'D_A', 'D_B', 'Pre', 'H']
            self.visual_names = ['real_A', 'pre_A', 'fake_B', 'rec_A', 'real_B', 'fake_A', 'rec_B']
        else:
            self.model_names = ['G_A', 'Pre', 'H']
            self.visual_names = ['real_A', 'fake_B']
        self.inference = NeRCoInference(Architecture.from_options(opt), opt.init_type, opt.init_gain, self.device)
        if not self.isTrain:
            self.inference.for_inference_alone()
        for name, net in self.inference.networks().items():
            prepared = execution.prepare(net, opt)
            setattr(self.inference, 'net' + name, prepared)
            setattr(self, 'net' + name, prepared)
        if not self.isTrain:
            return

        shared = dict(norm=opt.norm, init_type=opt.init_type, init_gain=opt.init_gain, device=self.device)
        g_args = dict(shared, ngf=opt.ngf, netG=opt.netG, use_dropout=not opt.no_dropout)

        self.netG_B = execution.prepare(networks.define_G(opt.output_nc, opt.input_nc, **g_args), opt)
        d_args = dict(shared, ndf=opt.ndf, netD=opt.netD, n_layers_D=opt.n_layers_D)
        self.netD_A = execution.prepare(networks.define_D(opt.output_nc, **d_args), opt)
        self.netD_B = execution.prepare(networks.define_D(opt.input_nc, **d_args), opt)
        self.netD_A_edge = execution.prepare(networks.define_D(opt.output_nc, **d_args), opt)
        self.netD_B_edge = execution.prepare(networks.define_D(opt.input_nc, **d_args), opt)
        self.discriminators = [self.netD_A, self.netD_B, self.netD_A_edge, self.netD_B_edge]
        self.clip_model = load_clip(opt.clip_pretrained, self.device, opt.channels_last)
        self.text_discriminator = TextDiscriminator(self.clip_model)
        self.edge = EdgeFilter(opt.edge_filter, opt.edge_rgb).to(self.device)

        pools = ['fake_A', 'fake_B', 'pre_A', 'fake_A_edge', 'fake_B_edge', 'fake_A_clip', 'fake_B_clip']
        for name in pools:
            setattr(self, name + '_pool', ImagePool(opt.pool_size))
        self.pool_names = [name + '_pool' for name in pools]
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionCycle = torch.nn.L1Loss()
        self.criterionIdt = torch.nn.L1Loss()
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(self.netPre.parameters(), self.netG_A.parameters(), self.netG_B.parameters(),
                            self.netH.parameters()), lr=opt.lr, betas=(opt.beta1, 0.999))
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(*(net.parameters() for net in self.discriminators)), lr=opt.lr, betas=(opt.beta1, 0.999))
        self.optimizers = [self.optimizer_G, self.optimizer_D]
        self.optimizer_names = ['G', 'D']
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=opt.amp == 'fp16')

    def set_input(self, input):
        AtoB = self.opt.direction == 'AtoB'
        self.real_A = input['A' if AtoB else 'B'].to(self.device)
        if self.isTrain:
            self.real_B = input['B' if AtoB else 'A'].to(self.device)

    def enhance(self, real_A, tile=0):
        """The inference path (models/nerco.py) on low-light images in [-1, 1]: Enhanced(pre_A, H, mask, fake_B)."""
        return self.inference.enhance(real_A, tile)

    def forward(self):
        enhanced = self.enhance(self.real_A)
        self.pre_A, self.H, self.mask, self.fake_B = enhanced.pre_A, enhanced.H, enhanced.mask, enhanced.fake_B
        if not self.isTrain:
            return
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B * self.mask)
        self.pre_A1 = self.netPre(self.fake_A)
        self.rec_B = self.netG_A(torch.cat((self.fake_A, self.pre_A1), 1))

    def loss_D_basic(self, netD, real, *fakes):
        """Half the sum of the real and fake GAN losses, once per fake batch; the real score is computed once."""
        loss_real = self.criterionGAN(netD(real), True)
        return sum((loss_real + self.criterionGAN(netD(fake.detach()), False)) * 0.5 for fake in fakes)

    def compute_D_A(self):
        self.loss_D_A = self.loss_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        return self.loss_D_A

    def compute_D_B(self):
        fake_A = self.fake_A_pool.query(self.fake_A)
        pre_A = self.pre_A_pool.query(self.pre_A)
        self.loss_D_B = self.loss_D_basic(self.netD_B, self.real_A, fake_A, pre_A)
        return self.loss_D_B

    def compute_D_A_edge(self):
        fake_B_edge = self.fake_B_edge_pool.query(self.edge(self.fake_B))
        self.loss_D_A_edge = self.loss_D_basic(self.netD_A_edge, self.edge(self.real_B), fake_B_edge)
        return self.loss_D_A_edge

    def compute_D_B_edge(self):
        fake_A_edge = self.fake_A_edge_pool.query(self.edge(self.fake_A))
        self.loss_D_B_edge = self.loss_D_basic(self.netD_B_edge, self.edge(self.real_A), fake_A_edge)
        return self.loss_D_B_edge

    def compute_D(self):
        return self.compute_D_A() + self.compute_D_B() + self.compute_D_A_edge() + self.compute_D_B_edge()

    def clip_input(self, pool, images):
        """What CLIP scores: the official code sends it through an image pool (detached when --pool_size > 0)."""
        return images if self.opt.paper_clip else pool.query(images)

    def compute_G(self):
        """Every generator-side loss of the official code, with its weights; returns loss_G."""
        opt = self.opt
        gan = self.criterionGAN
        l1 = self.criterionCycle
        if opt.lambda_identity > 0:
            self.idt_A = self.netG_A(torch.cat((self.real_B, self.real_B), 1))
            self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
            self.idt_B = self.netG_B(self.real_A)
            self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
        else:
            self.loss_idt_A = self.loss_idt_B = 0

        # The official code evaluates this term twice, once in loss_G_B and once in loss_PreConsis.
        loss_pre_gan = gan(self.netD_B(self.pre_A), True)
        self.loss_G_A = gan(self.netD_A(self.fake_B), True)
        self.loss_G_B = gan(self.netD_B(self.fake_A), True) + loss_pre_gan
        edge_B, edge_A = (self.edge(self.fake_B), self.edge(self.fake_A)) if opt.paper_edge else (self.fake_B, self.fake_A)
        self.loss_G_A_edge = gan(self.netD_A_edge(edge_B), True)
        self.loss_G_B_edge = gan(self.netD_B_edge(edge_A), True)
        self.loss_cycle_A = l1(self.rec_A, self.real_A) * opt.lambda_A
        self.loss_cycle_B = l1(self.rec_B, self.real_B) * opt.lambda_B
        self.loss_PreConsis = l1(self.pre_A, self.real_A) * 4 * opt.lambda_A + loss_pre_gan

        # Mask extractor: bypass, adversarial and self-supervised terms.
        real_B_minus_H = self.real_B - self.H
        loss_bypass = (l1(self.fake_B, self.real_A + self.H)
                       + l1(self.real_B, self.netG_A(torch.cat((real_B_minus_H, real_B_minus_H), 1))))
        loss_adv = gan(self.netD_A(self.real_A + self.H), True) + gan(self.netD_B(real_B_minus_H), True)
        H_fake_A, _ = self.netH(self.fake_A)
        loss_self = l1(self.H, self.fake_B - self.real_A) + l1(self.fake_A, self.real_B - H_fake_A)
        self.loss_H = loss_bypass + loss_adv + loss_self

        # Text-driven discriminator; the official code routes fake_A through the fake_B pool.
        text = self.text_discriminator
        self.loss_D_A_CLIP = (text(self.clip_input(self.fake_B_clip_pool, self.fake_B), HIGH)
                              + text(self.clip_input(self.fake_B_clip_pool, self.rec_B), HIGH))
        self.loss_D_B_CLIP = (text(self.clip_input(self.fake_B_clip_pool, self.fake_A), LOW)
                              + text(self.clip_input(self.fake_A_clip_pool, self.rec_A), LOW))

        self.loss_A = (self.loss_G_A + self.loss_cycle_A + self.loss_idt_A + self.loss_D_A_CLIP * 0.5
                       + self.loss_G_A_edge * 0.5)
        self.loss_B = (self.loss_G_B + self.loss_cycle_B + self.loss_idt_B + self.loss_D_B_CLIP * 0.5
                       + self.loss_G_B_edge * 0.5)
        self.loss_G = self.loss_A + self.loss_B + self.loss_H * 0.5 + self.loss_PreConsis
        return self.loss_G

    # The official code's names for the loss computations with their backward pass; the parity tests call them.
    def backward_G(self):
        self.compute_G().backward()

    def backward_D_A(self):
        self.compute_D_A().backward()

    def backward_D_B(self):
        self.compute_D_B().backward()

    def check_finite(self, loss, names):
        """True, or (the step is to be skipped) False or FloatingPointError for a non-finite loss, per
        --nan_policy. Under torchrun all processes decide together, since one process's non-finite loss reaches
        every averaged gradient."""
        if not distributed.any_rank(not torch.isfinite(loss)):
            return True
        bad = [name for name in names if not torch.isfinite(torch.as_tensor(getattr(self, 'loss_' + name)))]
        bad = bad or ['a loss on another process']
        if self.opt.nan_policy == 'skip':
            print('warning: non-finite %s; step skipped (--nan_policy skip)' % ', '.join(bad))
            return False
        raise FloatingPointError('non-finite loss: %s' % ', '.join(bad))

    def take_step(self, optimizer, loss, names):
        """Backpropagate loss (under torchrun the networks average their gradients over the processes as it
        runs), and step optimizer unless a loss is non-finite (check_finite). The gradients are freed right away,
        so they do not occupy memory during the other half of the GAN step. Returns whether the step was taken."""
        optimizer.zero_grad(set_to_none=True)  # in case a caller left gradients behind (e.g. backward_G)
        self.scaler.scale(loss).backward()
        finite = self.check_finite(loss, names)
        if finite:
            self.scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        return finite

    def optimize_parameters(self):
        """The official training step: forward, then the generators' losses and step with the discriminators
        frozen, then the discriminators' losses and step. A non-finite loss stops the run or skips the step
        (--nan_policy) before any weight changes. Returns the summed loss."""
        self.set_requires_grad(self.discriminators, False)
        with self.autocast():
            self.forward()
            loss_G = self.compute_G()
        stepped = self.take_step(self.optimizer_G, loss_G, G_LOSSES)
        self.set_requires_grad(self.discriminators, True)
        if not stepped:
            return loss_G.detach()
        with self.autocast():
            loss_D = self.compute_D()
        self.take_step(self.optimizer_D, loss_D, D_LOSSES)
        self.scaler.update()
        return (loss_G + loss_D).detach()
