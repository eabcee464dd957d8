"""The one way into inference: an Enhancer runs a model's inference module (models/nerco.py) on images, owning
everything around the network math: conversion from and to images, inference mode, --amp, --compile's step marks,
--tile and the out-of-GPU-memory skip. test.py, validation, load_enhancer and scripts/ all enhance through it. An
OnnxEnhancer offers the same calls on an exported ONNX file (onnxruntime)."""
import contextlib
import sys

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from util.images import as_rgb, from_uint8, to_uint8
from util.runtime import out_of_memory
from util.util import UserError
from . import execution, out_of_core

HINT = 'try --tile 512, a smaller image or (for the GPU) the CPU'


def as_batch(image):
    """(batch in [-1, 1], function turning an output batch back into image's kind and range) for a PIL image, a
    uint8 array (H, W), (H, W, 3) or a stack of frames (N, H, W, 3), or a tensor in [0, 1] ((3, H, W) or
    (N, 3, H, W))."""
    if isinstance(image, Image.Image):
        return as_batch(np.asarray(as_rgb(image)))[0], lambda out: Image.fromarray(to_uint8(out)[0])
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError('numpy images must be uint8 (H, W), (H, W, 3) or (N, H, W, 3), not %s' % image.dtype)
        stack = image.ndim == 4
        array = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
        return from_uint8(array if stack else array[None]), lambda out: to_uint8(out) if stack else to_uint8(out)[0]
    if isinstance(image, torch.Tensor):
        single = image.dim() == 3
        batch = image[None] if single else image
        return batch.float() * 2 - 1, lambda out: ((out.clamp(-1, 1) + 1) / 2).to(image)[0 if single else slice(None)]
    raise TypeError('expected a PIL image, a uint8 numpy array or a tensor in [0, 1], not %s' % type(image).__name__)


class ImageEnhancer:
    """What every backend offers: call it on a PIL image, a uint8 array or a tensor in [0, 1] to get the enhanced
    image of the same kind and size; tensor() (each backend's own) and attempt() take and give batches in [-1, 1],
    as the data loaders and networks do."""

    hint = HINT

    def __call__(self, image):
        batch, back = as_batch(image)
        return back(self.tensor(batch))

    def attempt(self, real_A, names):
        """tensor(real_A), or None when the batch does not fit in GPU (or CPU) memory: then each of its images
        (names) is reported as skipped on stderr, with the hint."""
        try:
            return self.tensor(real_A)
        except (MemoryError, RuntimeError) as exc:
            device = out_of_memory(exc)
            if device is None:
                raise
            height, width = real_A.shape[-2:]
            for name in names:
                tqdm.write('skipped %s: out of %s memory at %dx%d; %s' % (name, device, width, height, self.hint),
                           file=sys.stderr)
            if device == 'GPU':
                torch.cuda.empty_cache()
            return None


class InferenceModel:
    """What an Enhancer needs of a model, for inference alone (load_enhancer): the inference module, prepared as
    settings (models.execution.Settings) ask, on device; a NeRCoModel offers the same attributes."""

    def __init__(self, inference, device, settings):
        self.device, self.opt = device, settings
        if settings.compile:
            execution.check_compile(settings, device)
        if device.type == 'cuda':
            torch.backends.cudnn.benchmark = True
        for name, net in inference.to(device).networks().items():
            setattr(inference, 'net' + name, execution.prepare(net, settings))
        self.inference = inference.train(not settings.eval)

    def autocast(self):
        return execution.autocast(self.opt, self.device)


class Enhancer(ImageEnhancer):
    """Enhances with model's inference module (a NeRCoModel, for testing or in training, or an InferenceModel).
    tile > 0 computes out of core (--tile); hint is what the out-of-GPU-memory line suggests, in the flags of the
    command at hand; step, if given, is called after each layer and band and may raise to stop (models/nerco.py)."""

    def __init__(self, model, tile=0, hint=HINT, step=None):
        netG = model.inference.architecture.netG
        if tile and netG not in out_of_core.TILED_GENERATORS:
            raise UserError('%s, not --netG %s; leave out --tile' % (out_of_core.RESNET_ONLY, netG))
        self.model, self.tile, self.hint, self.step = model, tile, hint, step
        self.device = model.device

    def tensor(self, real_A):
        """fake_B for a batch real_A in [-1, 1], on the model's device, under inference mode and --amp."""
        opt = self.model.opt
        with torch.inference_mode(), self.model.autocast():
            x = real_A.to(self.device)
            if opt.compile and not x.is_inference():
                x = x.clone()  # an inference tensor, as a padded input is, so that both share one compiled graph
            execution.mark_step(opt)
            return self.model.inference.enhance(x, self.tile, step=self.step).fake_B

    @contextlib.contextmanager
    def evaluating(self):
        """A context in which the inference networks are in eval mode; they return to training mode after it."""
        networks = self.model.inference.networks().values()
        for net in networks:
            net.eval()
        try:
            yield self
        finally:
            for net in networks:
                net.train()


class OnnxEnhancer(ImageEnhancer):
    """A NeRCo ONNX file (scripts/export.py) run by onnxruntime, on the CPU or (with onnxruntime-gpu) CUDA."""

    def __init__(self, path, device='cpu'):
        from .deployment import onnx_session  # huggingface_hub and onnx, only for exported models
        self.session = onnx_session(path, device)
        self.run_options = None

    def tensor(self, real_A):
        import onnxruntime  # onnx_session has checked it is installed
        image = ((real_A.float().cpu() + 1) / 2).numpy()
        self.run_options = onnxruntime.RunOptions()
        return torch.from_numpy(self.session.run(None, {'image': image}, self.run_options)[0]) * 2 - 1

    def interrupt(self):
        """Makes a tensor() running in another thread raise soon (the web demo stops a job whose page closed)."""
        if self.run_options is not None:
            self.run_options.terminate = True
