"""A web page that enhances low-light photos with a trained NeRCo (Gradio): drop photos, compare each with its
enhanced version on a before/after slider, download the outputs as PNG files at the photos' full size.

    python app.py --checkpoints saves/LSRW
    python app.py --checkpoints saves/LSRW --device cuda --examples dataset/testA --host 0.0.0.0 --port 7860

It listens on 127.0.0.1 unless --host says otherwise, opens no share link unless --share, and sends no analytics.
One model is held in memory and one photo set is enhanced at a time; later requests wait in a queue, and the page
shows their place in it and how long they have waited (no estimate of the time left: it depends on the sizes of the
photos ahead), and the running one which photo of how many it is on. A job whose page is closed stops at its next
layer. --checkpoints takes what scripts/enhance.py takes (a run's folder, a Hub-layout folder,
an ONNX file).
"""
import argparse
import collections
import os
import shutil
import sys
import tempfile
import threading

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from enhancer import load_enhancer  # noqa: E402
from models.execution import AMP_MODES  # noqa: E402
from models.inference import Enhancer, OnnxEnhancer, out_of_memory  # noqa: E402
from models.out_of_core import TILED_GENERATORS  # noqa: E402
from util.images import find_images, load_rgb  # noqa: E402
from util.util import UserError, command  # noqa: E402

TILE_BAND = 512
TILE_CHOICES = ('auto', 'on', 'off')
NO_PHOTO = 'Upload a photo first: drop it on "Low-light photos", or pick an example.'


class PageClosed(Exception):
    """Raised inside the computation of a request whose page has been closed."""


class Photos:
    """Enhances uploaded photos with one model: checks their size, tiles large ones, and turns every failure into a
    message on the page (gr.Error) so that the next request works. A request whose page closes (page_closed) stops
    at the next layer or band of its computation."""

    def __init__(self, enhancer, max_pixels, tile_above, folder):
        self.max_pixels, self.tile_above, self.folder = max_pixels, tile_above, folder
        self.session, self.closed = None, threading.Event()
        self.tiled = None  # ONNX graphs and U-Nets are not tiled
        if isinstance(enhancer, Enhancer):
            enhancer = Enhancer(enhancer.model, 0, enhancer.hint, self.check)
            if enhancer.model.inference.architecture.netG in TILED_GENERATORS:
                self.tiled = Enhancer(enhancer.model, TILE_BAND, enhancer.hint, self.check)
        self.enhancer = enhancer

    def check(self):
        if self.closed.is_set():
            raise PageClosed

    def page_closed(self, request: gr.Request):
        """The page of request was closed (its heartbeat ended): its running request, if any, stops."""
        if request.session_hash == self.session:
            self.closed.set()
            if isinstance(self.enhancer, OnnxEnhancer):  # which runs its graph whole, with no step between layers
                self.enhancer.interrupt()

    def read(self, path):
        name = os.path.basename(path)
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Image.DecompressionBombError:
            raise gr.Error('%s is too large to open (over %d megapixels); enhance it with scripts/enhance.py --options '
                           '--tile 512' % (name, 2 * Image.MAX_IMAGE_PIXELS // 10 ** 6)) from None
        except Exception:
            raise gr.Error('%s is not an image this page can read (PNG, JPEG, WebP, TIFF, BMP...)' % name) from None
        if width * height > self.max_pixels:
            raise gr.Error('%s has %dx%d pixels, more than this page takes (--max_pixels %d); enhance it with '
                           'scripts/enhance.py --options --tile 512' % (name, width, height, self.max_pixels))
        try:
            return np.asarray(load_rgb(path))
        except Exception as exc:
            raise gr.Error('%s cannot be read: %s' % (name, exc)) from None

    def enhance_one(self, photo, tile, precision):
        pixels = photo.shape[0] * photo.shape[1]
        use_tile = self.tiled is not None and (tile == 'on' or tile == 'auto' and pixels > self.tile_above)
        enhancer = self.tiled if use_tile else self.enhancer
        if isinstance(enhancer, Enhancer):
            enhancer.model.opt.amp = precision
        try:
            return enhancer(photo)
        except (MemoryError, RuntimeError) as exc:
            device = out_of_memory(exc)
            if device is None:
                raise
            if device == 'GPU':
                torch.cuda.empty_cache()
            raise gr.Error('out of %s memory at %dx%d; choose tiling "on" or a smaller photo'
                           % (device, photo.shape[1], photo.shape[0])) from None

    def __call__(self, paths, tile='auto', precision='none', request: gr.Request = None, progress=gr.Progress()):
        """(before/after pair of the first photo, gallery of (output, caption), output PNG paths, the before/after
        pairs of all) for the uploaded photo paths. Each photo gets its own output, whatever names they share; the
        "before" images are PNG copies, which every browser shows (TIFF, for one, not)."""
        if not paths:
            gr.Warning(NO_PHOTO)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        self.session = request.session_hash if request else None
        self.closed.clear()
        folder = tempfile.mkdtemp(dir=self.folder)
        try:
            return self.enhance_all(paths, tile, precision, folder, progress)
        except BaseException:  # the request's outputs so far are deleted, whatever stopped it
            shutil.rmtree(folder)
            if not self.closed.is_set():
                raise
            print('stopped a request of %d photo(s): its page was closed' % len(paths), flush=True)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        finally:
            self.session = None

    def enhance_all(self, paths, tile, precision, folder, progress):
        pairs, gallery, taken = [], [], set()
        for index, path in enumerate(paths):
            self.check()
            photo = self.read(path)
            progress((index, len(paths)), desc='%s, %dx%d' % (os.path.basename(path), photo.shape[1], photo.shape[0]),
                     unit='photos done')
            enhanced = self.enhance_one(photo, tile, precision)
            stem = name = os.path.splitext(os.path.basename(path))[0].lstrip('.') or 'photo'  # not a hidden file
            number = 1
            while name in taken:  # a.png and a.jpg, or two a.png from different folders
                number += 1
                name = '%s_%d' % (stem, number)
            taken.add(name)
            before, after = (os.path.join(folder, '%s_%s.png' % (name, kind)) for kind in ('input', 'enhanced'))
            Image.fromarray(photo).save(before)
            Image.fromarray(enhanced).save(after)
            pairs.append((before, after))
            gallery.append((after, os.path.basename(path)))
        return pairs[0], gallery, [after for _, after in pairs], pairs


def compare(pairs, selection: gr.SelectData):
    """The before/after pair of the photo picked in the gallery (of the request that made the gallery)."""
    return pairs[selection.index] if selection.index < len(pairs) else gr.skip()


class NoEstimate(collections.defaultdict):
    """Gradio's record of each event's mean run time, which it would show a waiting request as its time left: untrue
    here, where a request's time grows with its photos' pixels (a 1x1 photo waiting behind a 40-megapixel one would
    read "0.3 s"). Kept but not offered, the page shows a request's place in the queue and time waited instead."""

    def __contains__(self, fn):
        return False


def build(photos, examples, on_gpu, model):
    with gr.Blocks(title='NeRCo low-light enhancement', analytics_enabled=False) as page:
        gr.Markdown('# NeRCo: low-light photo enhancement\nDrop one or several dark photos; each output keeps its '
                    "photo's full size. Photos above %.0f megapixels are tiled by default.\n\nModel: `%s`"
                    % (photos.tile_above / 1e6, model), elem_id='intro')
        with gr.Row():
            with gr.Column():
                uploads = gr.File(file_count='multiple', file_types=['image'], label='Low-light photos',
                                  elem_id='uploads')
                preview = gr.Gallery(label='Your photos', columns=4, height=160, interactive=False, visible=False,
                                     elem_id='preview')
                tile = gr.Radio(TILE_CHOICES, value='auto', label='Tiling (for large photos: same result, less '
                                'memory)')
                precision = gr.Radio(AMP_MODES, value='none', label='Mixed precision (GPU)', visible=on_gpu)
                run = gr.Button('Enhance', variant='primary', elem_id='enhance')
                if examples:
                    gr.Examples([[[path]] for path in examples], inputs=[uploads], label='Examples')
            with gr.Column():
                slider = gr.ImageSlider(label='Before / after', type='filepath', format='png', elem_id='slider')
                gallery = gr.Gallery(label='Enhanced (pick one to compare)', format='png', columns=4, visible=False,
                                     elem_id='gallery')
                downloads = gr.File(label='Enhanced PNG files', file_count='multiple', interactive=False,
                                    elem_id='downloads')
        pairs = gr.State([])
        uploads.change(lambda paths: gr.update(value=paths or [], visible=bool(paths)), uploads, preview,
                       api_visibility='private')
        run.click(photos, [uploads, tile, precision], [slider, gallery, downloads, pairs], api_name='enhance').then(
            lambda shown: gr.update(visible=len(shown or []) > 1), pairs, gallery, api_visibility='private')
        gallery.select(compare, pairs, slider, api_visibility='private')
        page.unload(photos.page_closed)
    page.queue(default_concurrency_limit=1)
    page._queue.process_time_per_fn = NoEstimate(page._queue.process_time_per_fn.default_factory)
    return page


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoints', default=os.environ.get('NERCO_CHECKPOINTS'),
                        required='NERCO_CHECKPOINTS' not in os.environ,
                        help='folder with <epoch>_net_{G_A,Pre,H}.pth (e.g. saves/LSRW), a Hub-layout folder or a '
                             '.onnx file (default: $NERCO_CHECKPOINTS, as a Hugging Face Space sets it)')
    parser.add_argument('--epoch', default='latest',
                        help='which checkpoint: latest, best (the best validation score) or an epoch number')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 or mps')
    parser.add_argument('--host', default=os.environ.get('GRADIO_SERVER_NAME', '127.0.0.1'),
                        help='address to listen on (0.0.0.0: every interface; default 127.0.0.1, or '
                             '$GRADIO_SERVER_NAME, which Hugging Face Spaces set)')
    parser.add_argument('--port', type=int, default=int(os.environ.get('GRADIO_SERVER_PORT', 7860)),
                        help='port to listen on')
    parser.add_argument('--examples', help='a folder of photos offered as examples on the page')
    parser.add_argument('--max_pixels', type=int, default=40_000_000, help='larger photos are refused on the page')
    parser.add_argument('--tile_above', type=int, default=4_000_000,
                        help='photos with more pixels are enhanced out of core (tiling "auto")')
    parser.add_argument('--share', action='store_true', help="also open a public gradio.live link (off: local only)")
    args = parser.parse_args(argv)
    if args.max_pixels < 1 or args.tile_above < 0:
        parser.error('--max_pixels must be 1 or more and --tile_above 0 or more')
    return args


@command
def main(argv=None):
    args = parse(argv)
    examples = find_images(args.examples) if args.examples else []
    if args.examples and not examples:
        raise UserError('--examples %s: no images found' % args.examples)
    enhancer = load_enhancer(args.checkpoints, args.epoch, args.device)
    with tempfile.TemporaryDirectory(prefix='nerco_app_') as folder:
        photos = Photos(enhancer, args.max_pixels, args.tile_above, folder)
        page = build(photos, examples, args.device.startswith('cuda'), '%s, epoch %s' % (args.checkpoints, args.epoch))
        page.launch(server_name=args.host, server_port=args.port, share=args.share, allowed_paths=[folder],
                    footer_links=['api'], quiet=True, prevent_thread_lock=True)
        note = ('; public link: %s' % page.share_url if args.share else
                ' (this machine only; --share for a public link)' if args.host == '127.0.0.1' else '')
        print('serving %s on http://%s:%d/%s' % (args.checkpoints, args.host, args.port, note), flush=True)
        page.block_thread()
    return 0


if __name__ == '__main__':
    sys.exit(main())
