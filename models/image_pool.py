"""History of generated images, so discriminators also see older generator outputs (Shrivastava et al., 2017)."""
import random

import torch


class ImagePool:
    """Stores up to pool_size images. A query returns, image by image, either the new image or (with probability
    1/2 once the pool is full) a stored one that the new image replaces. pool_size 0 returns the input unchanged;
    otherwise the returned images are detached from the graph."""

    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.images = []

    def query(self, images):
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.pool_size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self):
        return {'images': [image.cpu() for image in self.images]}

    def load_state_dict(self, state, device):
        self.images = [image.to(device) for image in state['images']]
