"""Neural representation normalisation (NRN, `netPre`): a ResNet encoder whose features an implicit MLP re-renders.

The implicit function follows LIIF (3x3 feature unfolding, positional-encoded coordinates, cell decoding, local
ensemble). As the official code queries it, every pixel reads its own feature vector, the relative coordinates are
exactly zero and the cell is the constant 2, so the whole query is one MLP over 3x3 neighbourhoods: an exact
rewrite as a 3x3 convolution followed by 1x1 convolutions. `render` runs that rewrite; `query_literal` keeps the
literal query as the reference it is tested against.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generators import resnet_trunk
from .in_memory import CHUNK_PIXELS, IN_MEMORY, InMemory

HIDDEN = (256, 256, 256)
FREQUENCIES = 8


def make_coord(h, w, device):
    """Coordinates of the pixel centres of an h x w grid in [-1, 1], shape (h * w, 2) as (row, column)."""
    axes = [-1 + 1 / n + (2 / n) * torch.arange(n, device=device, dtype=torch.float32) for n in (h, w)]
    return torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1).view(-1, 2)


def positional_encoding(x, n_freq=FREQUENCIES):
    """sin and cos of x at frequencies pi * 2^k: (..., N) -> (..., 2 * N * n_freq)."""
    freq = (2 ** torch.arange(n_freq, dtype=torch.float32, device=x.device)) * math.pi
    spectrum = x[..., None] * freq
    return torch.stack([spectrum.sin(), spectrum.cos()], dim=-2).view(*x.shape[:-1], -1)


def cell_size(h, w, device):
    """The decoded cell, (2 / h, 2 / w) rescaled by the grid size: 2 in both axes, rounded as float32 rounds it."""
    cell = torch.ones(2, device=device) * torch.tensor([2 / h, 2 / w], device=device)
    return cell * torch.tensor([h, w], dtype=torch.float32, device=device)


class MLP(nn.Module):
    """Fully connected ReLU network applied to the last dimension."""

    def __init__(self, in_dim, out_dim, hidden=HIDDEN):
        super().__init__()
        layers = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class ImplicitDecoder(nn.Module):
    """Renders an RGB value at each pixel centre from the encoder's features."""

    def __init__(self, feat_dim=64, out_dim=3):
        super().__init__()
        self.feat_dim = feat_dim
        coord_dim = 2 + 2 * 2 * FREQUENCIES
        self.imnet = MLP(feat_dim * 9 + coord_dim + 2, out_dim)

    def forward(self, feat, chunk_pixels=CHUNK_PIXELS):
        """render in memory, in bands of rows of about chunk_pixels pixels (None: one pass)."""
        return self.render(InMemory(chunk_pixels), feat)

    def render(self, ops, feat):
        """The query as convolutions: the coordinate inputs are zero, the cell input folds into the first bias.
        ops decodes bands of rows at a time to bound the memory of the 256-channel hidden layers; the result is
        the same."""
        return ops.bands(feat, self.imnet.layers[-1].out_features, self.decode, self.first_bias)

    def first_bias(self, h, w):
        """The first layer's bias with the constant cell input of an h x w image folded in."""
        first = self.imnet.layers[0]
        cell = cell_size(h, w, first.weight.device).to(first.weight.dtype)
        return torch.addmv(first.bias, first.weight[:, -2:], cell)

    def decode(self, padded, first_bias):
        """RGB for the rows of `padded` (features zero-padded by one pixel). The hidden layers run channels-last,
        as matrix products over the pixels, which oneDNN and cuBLAS compute without reordering them."""
        first = self.imnet.layers[0]
        weight = first.weight[:, :self.feat_dim * 9].reshape(-1, self.feat_dim, 3, 3)
        x = F.conv2d(padded.contiguous(memory_format=torch.channels_last),
                     weight.contiguous(memory_format=torch.channels_last), first_bias).permute(0, 2, 3, 1)
        for layer in self.imnet.layers[1:]:
            if isinstance(layer, nn.ReLU):
                x = F.relu(x, inplace=True)  # conv2d's and linear's backward do not need their output
            else:
                x = layer(x)
        return x.permute(0, 3, 1, 2)

    def query_literal(self, feat):
        """The official query, step by step: unfold, coordinates, four ensemble queries, area-weighted sum."""
        b, c, h, w = feat.shape
        q_feat = F.unfold(feat, 3, padding=1).view(b, c * 9, h * w).permute(0, 2, 1)
        coord = make_coord(h, w, feat.device)
        coord = torch.cat([coord, positional_encoding(coord)], dim=-1)
        feat_coord = make_coord(h, w, feat.device)
        feat_coord = torch.cat([feat_coord, positional_encoding(feat_coord)], dim=-1)
        cell = cell_size(h, w, feat.device).to(feat.dtype).expand(b, h * w, 2)
        preds, areas = [], []
        for _ in range(4):  # the official shifts the query by (+-rx, +-ry) but then reads feat_coord unshifted
            rel_coord = coord - feat_coord
            rel_coord[:, 0] *= h
            rel_coord[:, 1] *= w
            inp = torch.cat([q_feat, rel_coord.expand(b, -1, -1), cell], dim=-1)
            preds.append(self.imnet(inp))
            areas.append(torch.abs(rel_coord[:, 0] * rel_coord[:, 1]) + 1e-9)
        total = torch.stack(areas).sum(dim=0)
        out = sum(pred * (area / total).unsqueeze(-1) for pred, area in zip(preds, reversed(areas)))
        return out.view(b, h, w, -1).permute(0, 3, 1, 2)


class NRN(nn.Module):
    """The NRN: ResNet encoder (9 blocks, back to ngf channels at full resolution) plus the implicit decoder."""

    def __init__(self, input_nc=3, ngf=64, norm_layer=nn.InstanceNorm2d, use_dropout=False, n_blocks=9):
        super().__init__()
        self.mlp = ImplicitDecoder(ngf)
        self.model = nn.Sequential(*resnet_trunk(input_nc, ngf, norm_layer, use_dropout, n_blocks))
        self.literal = False

    def forward(self, x, ops=IN_MEMORY):
        feat = ops.sequential(self.model, x)
        return self.mlp.query_literal(feat) if self.literal else self.mlp.render(ops, feat)
