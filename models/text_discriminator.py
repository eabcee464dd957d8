"""Text-driven appearance discriminator: a frozen CLIP RN50 scores images against "low light" / "high light" prompts."""
import logging
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from util import distributed
from util.util import UserError
from . import checkpoints

PROMPTS = ('low light image', 'high light image')
LOW, HIGH = 0, 1
CLIP_ARCH = 'RN50-quickgelu'
OPENAI_CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'clip', 'RN50.pt')


def _download_openai():
    """Ask open_clip for the OpenAI weights (its cache first); a clear error when they cannot be had."""
    import open_clip
    cfg = open_clip.pretrained.get_pretrained_cfg(CLIP_ARCH, 'openai')
    try:
        return open_clip.pretrained.download_pretrained(cfg)
    except Exception as exc:
        raise UserError('CLIP RN50 weights could not be fetched (%s). Download %s and save it as %s, or pass '
                        '--clip_pretrained /path/to/RN50.pt (or --clip_pretrained none for a test run with random '
                        'CLIP weights)' % (exc.__class__.__name__, cfg['url'], OPENAI_CACHE)) from None


def load_clip(pretrained='openai', device='cpu', channels_last=False):
    """A frozen CLIP RN50 (OpenAI layout, float32, eval mode, no gradients; NHWC memory with channels_last).

    pretrained: 'openai' (OpenAI's RN50.pt at ~/.cache/clip if present, else open_clip's source), a file path, or
    'none' for random weights (tests and offline demos only).
    """
    import open_clip
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # open_clip's "no pretrained weights loaded": they are loaded below
    try:
        model = open_clip.create_model(CLIP_ARCH, pretrained=None)
    finally:
        logging.disable(quiet)
    if pretrained == 'none':
        if distributed.is_main():  # once, not once per torchrun process
            print('note: --clip_pretrained none: CLIP has random weights, so the text-driven loss means nothing '
                  '(for tests and demos)', file=sys.stderr)
    else:
        if pretrained == 'openai':
            path = OPENAI_CACHE if os.path.isfile(OPENAI_CACHE) else _download_openai()
        elif os.path.isfile(pretrained):
            path = pretrained
        else:
            raise UserError('--clip_pretrained %s: no such file; give a path to RN50.pt, or openai, or none'
                            % pretrained)
        state = {k: v for k, v in checkpoints.read_clip_weights(path).items()
                 if k not in ('input_resolution', 'context_length', 'vocab_size')}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise UserError('%s: not CLIP RN50 weights (%s)' % (path, str(exc).splitlines()[0])) from None
    model = model.float().eval().requires_grad_(False).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


class TextDiscriminator(nn.Module):
    """L1 distance between CLIP's softmax over the two prompts and the one-hot target prompt.

    Images in [-1, 1] are resized to 224x224 (bilinear, no antialiasing, as torchvision resized tensors when the
    official code was written) and, as in the official code, given to CLIP without its mean/std normalisation.
    The prompts' text features are constant (CLIP is frozen) and computed once.
    """

    def __init__(self, clip_model):
        super().__init__()
        self.clip_model = clip_model
        self.text_features = None

    def train(self, mode=True):
        return super().train(False)

    def _text(self, device):
        if self.text_features is None or self.text_features.device != device:
            import open_clip
            tokens = open_clip.get_tokenizer(CLIP_ARCH)(list(PROMPTS)).to(device)
            with torch.no_grad():
                self.text_features = F.normalize(self.clip_model.encode_text(tokens), dim=-1)
        return self.text_features

    def probabilities(self, images):
        """CLIP's probability of each prompt for each image: shape (N, 2)."""
        images = F.interpolate(images, size=(224, 224), mode='bilinear', align_corners=False)
        image_features = F.normalize(self.clip_model.encode_image(images), dim=-1)
        logits = self.clip_model.logit_scale.exp() * image_features @ self._text(images.device).t()
        return logits.softmax(dim=-1)

    def forward(self, images, target):
        probs = self.probabilities(images)
        return F.l1_loss(probs, F.one_hot(torch.tensor(target, device=probs.device), 2).to(probs.dtype).expand_as(probs))
