"""Video mode (not in the paper): the local brightness of the enhanced frames follows a moving average carried along
the camera's motion, and takes the new frame at once wherever the input itself really changed (docs/FIDELITY.md)."""
import numpy as np
import torch
import torch.nn.functional as F

# the frames are compared, and the average kept, at most this many pixels across
WORK_SIDE = 256
# local brightness: the mean over a square of 2 * RADIUS + 1 pixels of the working size
RADIUS = 2
# a place whose input changed by less than MIN_CHANGE (log of its local brightness or contrast: sensor noise, a
# flickering light) is smoothed; by more than FULL_CHANGE (a lamp, a moving object) it takes the new frame at once
MIN_CHANGE, FULL_CHANGE = 0.15, 0.3
# grey levels added to the local brightness and contrast before they are compared, so that noise in the dark and
# in flat areas barely counts
DARK_FLOOR, CONTRAST_FLOOR = 8, 8
# the motion estimate starts on images about this many pixels across, with this many steps on each level
COARSEST, STEPS = 16, 3


def camera_shift(previous, current):
    """The translation (dy, dx) in pixels that carries previous (H, W) onto current (H, W), by Lucas-Kanade on an
    image pyramid of their log brightness, with a brightness offset as a third unknown (a global change of the light
    is no motion)."""
    if min(previous.shape) < 2:
        return [0.0, 0.0]
    levels = [(torch.log1p(previous), torch.log1p(current))]
    while min(levels[-1][0].shape) >= 2 * COARSEST:
        levels.append(tuple(F.avg_pool2d(image[None, None], 2)[0, 0] for image in levels[-1]))
    shift = torch.zeros(2, dtype=torch.float64)
    for level, (before, after) in enumerate(reversed(levels)):
        shift = shift * (2 if level else 1)
        for _ in range(STEPS):
            moved, coverage = translate(torch.stack([before, torch.ones_like(before)]), shift.tolist())
            inside = coverage > 0.999
            columns = torch.stack([*(-g for g in torch.gradient(moved)), torch.ones_like(moved)])[:, inside].double()
            system = columns @ columns.T + 1e-6 * torch.eye(3, dtype=torch.float64)
            shift = shift + torch.linalg.solve(system, columns @ (after - moved)[inside].double())[:2]
    return shift.tolist() if bool(torch.isfinite(shift).all()) else [0.0, 0.0]


def translate(field, shift):
    """field (C, h, w) moved by shift (dy, dx) pixels (bilinear; zeros where it comes from outside)."""
    h, w = field.shape[1:]
    ys = (torch.arange(h, dtype=field.dtype) - shift[0] + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=field.dtype) - shift[1] + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)[None]
    return F.grid_sample(field[None], grid, mode='bilinear', padding_mode='zeros', align_corners=False)[0]


def move(field, dy, dx):
    """field (C, h, w) moved by whole pixels, and where it is defined (h, w) (not where it comes from outside)."""
    h, w = field.shape[1:]
    moved, defined = torch.zeros_like(field), torch.zeros((h, w), dtype=torch.bool)
    if abs(dy) >= h or abs(dx) >= w:
        return moved, defined
    target = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
    moved[:, target[0], target[1]] = field[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    defined[target] = True
    return moved, defined


def local_mean(images):
    """(N, C, h, w) averaged over a square of 2 * RADIUS + 1 pixels around each pixel."""
    return F.avg_pool2d(images, 2 * RADIUS + 1, stride=1, padding=RADIUS, count_include_pad=False)


def describe(images):
    """The log of the local brightness and contrast (standard deviation) of images (N, 3, h, w), (N, 6, h, w)."""
    mean, square = local_mean(images), local_mean(images ** 2)
    deviation = (square - mean ** 2).clamp(min=0).sqrt()
    return torch.log(torch.cat([mean + DARK_FLOOR, deviation + CONTRAST_FLOOR], 1))


class TemporalSmoother:
    """Steadies the brightness of a clip enhanced frame by frame. Each enhanced frame's local brightness (the mean
    over a few pixels of a working size of at most WORK_SIDE) follows an exponential moving average with a span of
    `window` frames (the newest weighs 2 / (window + 1)), carried along the camera's global motion; where the
    input's own local brightness or contrast changed, the average takes the new frame at once. Each frame keeps its
    detail and is only rescaled by the smooth ratio of the average to its own local brightness: where the enhanced
    frames are steady nothing changes, and the average of a place moves less in total than the enhanced frames do
    there. One object per clip; frames come in order."""

    def __init__(self, window):
        self.weight = 2 / (window + 1)
        self.previous = None

    def __call__(self, inputs, outputs):
        """The smoothed versions of outputs (N, H, W, 3) uint8, enhanced from inputs (N, H, W, 3) uint8."""
        low, high = (torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
                     for frames in (inputs, outputs))
        size = tuple(low.shape[2:])
        scale = min(1, WORK_SIDE / max(size))
        work = tuple(max(1, round(n * scale)) for n in size)
        low, high_work = (F.adaptive_avg_pool2d(frames, work) for frames in (low, high))
        smoothed = []
        for frame, features, luma, brightness in zip(high, describe(low), low.mean(1), local_mean(high_work)):
            ratio = F.interpolate(self.ratio(features, luma, brightness)[None], size=size, mode='bilinear',
                                  align_corners=False)[0]
            smoothed.append((frame * ratio).round().clamp(0, 255).byte().permute(1, 2, 0))
        return torch.stack(smoothed).numpy()

    def ratio(self, features, luma, brightness):
        """The factor (3, h, w) that rescales this frame's enhancement, from the input's features (6, h, w) and luma
        (h, w) and the enhancement's local brightness (3, h, w) at the working size; the state moves on to it."""
        average = brightness
        if self.previous is not None and self.previous['luma'].shape == luma.shape:
            still, moving = (self.carry(features, shift) for shift in
                             ((0, 0), [round(s) for s in camera_shift(self.previous['luma'], luma)]))
            _, change, carried = moving if moving[0] < still[0] else still
            weight = self.weight + (1 - self.weight) * ((change - MIN_CHANGE) / (FULL_CHANGE - MIN_CHANGE)).clamp(0, 1)
            average = carried + weight * (brightness - carried)
        self.previous = {'features': features, 'luma': luma, 'average': average}
        return (average + 1) / (brightness + 1)

    def carry(self, features, shift):
        """The previous frame moved by shift (dy, dx) whole pixels: (how badly it explains this frame: the median
        change of the input's features beyond their common change, the change at each place (inf where it came from
        outside), the average)."""
        moved, defined = move(torch.cat([self.previous['features'], self.previous['average']]), *shift)
        difference = (features - moved[:6])[:, defined]
        change = torch.full(defined.shape, float('inf'))
        if not defined.any():
            return float('inf'), change, moved[6:]
        change[defined] = difference.abs().amax(0)
        beyond = (difference - difference.median(1, keepdim=True).values).abs().amax(0)
        return float(beyond.median()), change, moved[6:]
