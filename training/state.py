"""Where a training run stands (RunState) and the training state saved beside the weights, from which
--continue_train resumes exactly: optimizers, schedulers, gradient scaler, image pools and random generators."""
import dataclasses
import random
from typing import Optional

import numpy as np
import torch

from models import checkpoints
from util import distributed
from util.util import UserError


@dataclasses.dataclass
class RunState:
    """The counters of a run: its seed, the epoch, images seen in this epoch and in all, whether the epoch's
    training part is over, and (not saved) the iteration last validated, so that one iteration validates once, and
    the images this process has trained on."""
    seed: Optional[int] = None
    epoch: int = 1
    epoch_iter: int = 0
    total_iters: int = 0
    epoch_done: bool = False
    validated_at: Optional[int] = dataclasses.field(default=None, compare=False)
    trained_here: int = dataclasses.field(default=0, compare=False)

    def saved(self):
        """The counters as the training state file holds them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ('validated_at', 'trained_here')}

    @classmethod
    def from_saved(cls, counters):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in counters.items() if k in names})

    def seen(self):
        """Training images seen by all processes (the x axis of the loggers)."""
        return self.total_iters * distributed.world_size()

    def crossed(self, freq, step):
        """Whether the image counter passed a multiple of freq in its last step of `step` images."""
        return freq > 0 and self.total_iters // freq > (self.total_iters - step) // freq

    def advance(self, images):
        self.total_iters += images
        self.epoch_iter += images
        self.trained_here += images

    def next_epoch(self):
        self.epoch, self.epoch_iter, self.epoch_done = self.epoch + 1, 0, False


def training_state(model, run):
    """Everything besides the weights that an exact resume needs, as tensors and plain values (so that it loads
    with weights_only=True)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {'counters': run.saved(),
            'optimizers': [o.state_dict() for o in model.optimizers],
            'schedulers': [s.state_dict() for s in model.schedulers],
            'pools': {name: getattr(model, name).state_dict() for name in model.pool_names},
            'scaler': model.scaler.state_dict(),
            'rng': {'python': random.getstate(), 'numpy': (kind, torch.from_numpy(key.astype(np.int64)), pos,
                                                           has_gauss, gauss),
                    'torch': torch.get_rng_state(),
                    'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}


def save_checkpoint(model, label, run):
    """The networks and the training state as one checkpoint set."""
    model.save_networks(label, {checkpoints.state_path(model.save_dir, label): training_state(model, run)})


def load_optimizers(model, state, path):
    try:
        for optimizer, saved in zip(model.optimizers, state['optimizers']):
            optimizer.load_state_dict(saved)
            for param, entry in optimizer.state.items():
                for key, value in entry.items():
                    if value.dim() and value.shape != param.shape:
                        raise ValueError('%s of shape %s for a parameter of shape %s'
                                         % (key, tuple(value.shape), tuple(param.shape)))
    except (ValueError, KeyError) as exc:
        raise UserError('%s: the optimizer state does not fit these networks (%s); it was saved by a run with '
                        'other options (--ngf, --ndf, --netG, --netD, --norm), or delete it to resume from the '
                        'weights alone' % (path, exc)) from None


def load_random_state(rng):
    random.setstate(rng['python'])
    kind, key, pos, has_gauss, gauss = rng['numpy']
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng['torch'].cpu())
    if rng['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng['cuda']])


def load_training_state(model, label):
    """Restore optimizers, schedulers, the gradient scaler, and (in single-process runs) image pools and random
    generators; return the saved RunState, or None when the run was saved by the official code (weights only)."""
    path = checkpoints.state_path(model.save_dir, label)
    checkpoints.check_set(model.save_dir, label, [path])
    state = checkpoints.read_training_state(path)
    if state is None:
        return None
    load_optimizers(model, state, path)
    for scheduler, saved in zip(model.schedulers, state['schedulers']):
        scheduler.load_state_dict(saved)
    if state.get('scaler'):
        model.scaler.load_state_dict(state['scaler'])
    if distributed.world_size() == 1:  # the saved pools and random state are rank 0's; each rank keeps its own
        for name, saved in state['pools'].items():
            getattr(model, name).load_state_dict(saved, model.device)
        load_random_state(state['rng'])
    return RunState.from_saved(state['counters'])
