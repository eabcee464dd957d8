"""The training page's charts, drawn with matplotlib: the losses in small multiples by group, and each validation
metric on an axis of its own with its unit, the best validation marked."""
from matplotlib.figure import Figure

from training.validation import METRICS
from util.util import atomic_write

LOSS_GROUPS = (('discriminators', lambda name: name.startswith('D_')),
               ('cycle, identity, consistency', lambda name: name.startswith(('cycle', 'idt', 'PreConsis'))),
               ('generators, mask extractor', lambda name: True))
UNITS = {'psnr': 'PSNR (dB)', 'ssim': 'SSIM (0 to 1)', 'lpips': 'LPIPS (lower is better)',
         'niqe': 'NIQE (lower is better)'}
PANEL = (3.6, 2.6)  # inches of one panel, at 100 dots an inch


def epochs(history):
    """The x of each logged step of [(epoch, iters, values)]: its epoch plus the share of that epoch done."""
    longest = {}
    for epoch, iters, _ in history:
        longest[epoch] = max(longest.get(epoch, 0), iters)
    return [epoch - 1 + iters / max(longest[epoch], 1) for epoch, iters, _ in history]


def panels(count):
    figure = Figure(figsize=(PANEL[0] * count, PANEL[1]), dpi=100, layout='constrained')
    return figure, figure.subplots(1, count, squeeze=False)[0]


def loss_figure(history):
    """The losses of [(epoch, iters, {name: value})], one panel a group of LOSS_GROUPS."""
    names = list(dict.fromkeys(name for _, _, values in history for name in values))
    groups = []
    for title, belongs in LOSS_GROUPS:
        members = [name for name in names if belongs(name) and not any(name in g for _, g in groups)]
        if members:
            groups.append((title, members))
    figure, axes = panels(len(groups))
    x = epochs(history)
    for ax, (title, members) in zip(axes, groups):
        for name in members:
            points = [(xi, values[name]) for xi, (_, _, values) in zip(x, history) if name in values]
            ax.plot(*zip(*points), label=name, linewidth=1)
        ax.set(title=title, xlabel='epoch', ylabel='loss')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    return figure


def validation_figure(rows, best=None):
    """Each metric of the validation rows ({'epoch', 'iteration', metric: value}) on a panel of its own; best
    ({'metric', 'epoch', 'iteration', 'value'}, best.json) marked on its metric's panel (a record without them is
    not marked)."""
    metrics = [name for name in METRICS if name in rows[0]]
    figure, axes = panels(len(metrics))
    x = [row['iteration'] for row in rows]
    for ax, metric in zip(axes, metrics):
        ax.plot(x, [row[metric] for row in rows], marker='o', markersize=3, linewidth=1)
        ax.set(title=metric.upper(), xlabel='training images seen', ylabel=UNITS.get(metric, metric))
        ax.grid(alpha=0.3)
        if best and best['metric'] == metric and {'epoch', 'iteration', 'value'} <= set(best):
            ax.plot([best['iteration']], [best['value']], marker='*', markersize=14, color='tab:red',
                    linestyle='none', label='best (epoch %s)' % best['epoch'])
            ax.legend(fontsize=7)
    return figure


def save(figure, path):
    """Write figure as a PNG at path, atomically."""
    atomic_write(path, lambda f: figure.savefig(f, format='png'))
