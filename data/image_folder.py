"""The image folders of a dataset (trainA, trainB, testA), with an error that says what a folder should hold."""
import os

from util.images import IMG_EXTENSIONS, find_images
from util.util import UserError


def make_dataset(folder, max_dataset_size=float('inf'), what='images'):
    """Sorted image paths under folder (subfolders included); other files are ignored. A missing folder or one
    without images is a UserError saying what it should hold."""
    if not os.path.isdir(folder):
        raise UserError('%s: folder not found; it should hold %s' % (folder, what))
    images = find_images(folder)
    if not images:
        raise UserError('%s: no images found (%s); it should hold %s' % (folder, ', '.join(IMG_EXTENSIONS), what))
    return images[:int(min(max_dataset_size, len(images)))]
