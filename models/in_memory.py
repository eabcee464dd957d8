"""The in-memory runner of the networks' one description of themselves: each network that --tile can run computes
its forward(x, ops) through the few operations below, which models/out_of_core.py's Engine offers as well, so that
the in-memory and the out-of-core results cannot drift apart."""
import torch
from torch.utils.checkpoint import checkpoint


class InMemory:
    """Runs a network's description on whole tensors (N, C, H, W). band_pixels bounds the rows the NRN's decoder
    renders at once (None: one pass, as an exported graph does); step, if given, is called after each layer of a
    sequence and each band, and may raise to stop the computation (the web demo stops a job whose page closed)."""

    def __init__(self, band_pixels, step=None):
        self.band_pixels, self.step = band_pixels, step

    def network(self, net, x):
        """net's output for x, called as a module (wrappers, hooks and compilation apply)."""
        return net(x, self)

    def sequential(self, layers, x, recompute=False):
        """layers applied in turn; with recompute, training keeps only x and recomputes the rest in the backward
        pass (--activation_checkpointing)."""
        if recompute and torch.is_grad_enabled():
            return checkpoint(layers, x, use_reentrant=False)
        for layer in layers:
            x = layer(x)
            if self.step:
                self.step()
        return x

    @staticmethod
    def combine(function, channels, *inputs):
        """function of inputs of the same height and width, pixel by pixel, giving `channels` channels."""
        return function(*inputs)

    @staticmethod
    def pooled(x):
        """Each channel's mean and maximum over the image: (N, 2C, 1, 1)."""
        return torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], dim=1)

    def bands(self, x, channels, compute, setup):
        """compute(band, setup(height, width)) (giving `channels` channels) on bands of rows of x zero-padded by one
        pixel all round, each band with its row above and below, the results joined; rows of about band_pixels
        pixels at a time."""
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
        if self.band_pixels is None:
            return compute(padded, setup(*x.shape[-2:]))
        return self.banded(padded, compute, setup)

    @torch.compiler.disable(recursive=False)
    def banded(self, padded, compute, setup):
        """bands' loop and setup, which run eagerly under --compile (else the image size would be a guard), each
        band's compute compiled. (An exported graph, which cannot hold this, decodes in one pass.)"""
        height, width = padded.shape[-2] - 2, padded.shape[-1] - 2
        common = setup(height, width)
        rows = max(1, self.band_pixels // width)
        if rows >= height:
            return compute(padded, common)
        # Each band is copied in the features' layout with strides of its own, so that all bands share compute's
        # compilation; and a loop, not a comprehension, whose frame would be compiled.
        channels_last = padded.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        bands = []
        for top in range(0, height, rows):
            bands.append(compute(padded[:, :, top:top + rows + 2].clone(memory_format=layout), common))
            if self.step:
                self.step()
        return torch.cat(bands, dim=2)


CHUNK_PIXELS = 1 << 16  # the NRN's 256-channel hidden layers for this many pixels at a time take 200 MB in float32
IN_MEMORY = InMemory(CHUNK_PIXELS)
ONE_PASS = InMemory(None)
