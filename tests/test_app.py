"""The web demo (app.py) served on 127.0.0.1: its API gives what scripts/enhance.py gives, bad uploads get a message
on the page and the app keeps serving, and a real browser (headless Chromium) shows the enhanced photo."""
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request

import numpy as np
import torch
import pytest
from PIL import Image

from conftest import ROOT
from enhancer import load_enhancer
from helpers import image_pair, load_script, save_tiny_checkpoint

gradio_client = pytest.importorskip('gradio_client', reason='the app test needs requirements-app.txt (make test)')
app_script = load_script('app.py')
enhance_script = load_script('scripts/enhance.py')
MAX_PIXELS = 6000
CHROMIUM, CHROMEDRIVER = shutil.which('chromium'), shutil.which('chromedriver')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """(URL of app.py serving a tiny checkpoint, the checkpoint folder, a folder with two photos)."""
    root = tmp_path_factory.mktemp('app')
    folder = save_tiny_checkpoint(root)
    photos = root / 'photos'
    photos.mkdir()
    for name, size in (('odd.png', (37, 53)), ('even.png', (40, 32))):
        Image.fromarray(image_pair(len(name), size)[1]).save(photos / name)
    server, url = serve(folder, '--examples', str(photos))
    yield url, folder, photos
    server.terminate()
    server.wait(30)


def serve(folder, *flags, env=None):
    """(process, URL) of app.py serving the checkpoints in folder, once it answers."""
    port = free_port()
    # Ctrl-C acts as in a terminal, also when the tests run in a background job (whose processes ignore it)
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, 'app.py'), '--checkpoints', folder, '--port',
                               str(port), '--max_pixels', str(MAX_PIXELS), *flags], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    url = 'http://127.0.0.1:%d/' % port
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return server, url
        except OSError:
            assert server.poll() is None and time.time() < deadline, server.stdout.read() if server.poll() else 'slow'
            time.sleep(0.5)


def enhanced_by_script(folder, photos, out):
    assert enhance_script.main([str(photos), '--checkpoints', folder, '--out', str(out)]) == 0
    return {name: np.asarray(Image.open(out / name)) for name in ('odd.png', 'even.png')}


def test_api_gives_what_enhance_py_gives(served, tmp_path):
    url, folder, photos = served
    client = gradio_client.Client(url, verbose=False)
    pair, gallery, files = client.predict([gradio_client.handle_file(str(photos / n)) for n in ('odd.png', 'even.png')],
                                          'auto', 'none', api_name='/enhance')
    expected = enhanced_by_script(folder, photos, tmp_path / 'script')
    assert [os.path.basename(f) for f in files] == ['odd_enhanced.png', 'even_enhanced.png']
    for name, path in zip(('odd.png', 'even.png'), files):
        assert np.array_equal(np.asarray(Image.open(path)), expected[name]), name
    assert np.array_equal(np.asarray(Image.open(pair[1])), expected['odd.png']) and len(gallery) == 2
    tiled = client.predict([gradio_client.handle_file(str(photos / 'odd.png'))], 'on', 'none', api_name='/enhance')
    assert np.abs(np.asarray(Image.open(tiled[2][0])).astype(int) - expected['odd.png']).max() <= 1


def test_every_upload_gets_its_own_output_and_a_before_image_browsers_show(served, tmp_path):
    """a.png, a.jpg and a TIFF a.tif in one request: three outputs, each of its own photo; every "before" image is a
    PNG of the photo; a gallery pick shows the pair of the request that made the gallery."""
    url, folder, photos = served
    odd = np.asarray(Image.open(photos / 'odd.png'))
    for name, photo in (('odd.jpg', np.asarray(Image.open(photos / 'even.png'))), ('odd.tif', odd[:, ::-1])):
        Image.fromarray(photo).save(tmp_path / name, quality=100)
    uploads = [photos / 'odd.png', tmp_path / 'odd.jpg', tmp_path / 'odd.tif']
    client = gradio_client.Client(url, verbose=False)
    pair, gallery, files = client.predict([gradio_client.handle_file(str(path)) for path in uploads], 'auto', 'none',
                                          api_name='/enhance')
    assert [os.path.basename(f) for f in files] == ['odd_enhanced.png', 'odd_2_enhanced.png', 'odd_3_enhanced.png']
    enhance = load_enhancer(folder)
    for path, output in zip(uploads, files):
        assert np.array_equal(np.asarray(Image.open(output)), enhance(np.asarray(Image.open(path)))), path
    assert [item['caption'] for item in gallery] == ['odd.png', 'odd.jpg', 'odd.tif']
    assert pair[0].endswith('.png') and np.array_equal(np.asarray(Image.open(pair[0])), odd)
    shutil.copy(photos / 'odd.png', tmp_path / '.odd.png')  # a hidden file's output is not hidden
    *_, files = client.predict([gradio_client.handle_file(str(tmp_path / '.odd.png'))], 'auto', 'none',
                               api_name='/enhance')
    assert [os.path.basename(f) for f in files] == ['odd_enhanced.png']
    pairs = [('a_input.png', 'a_enhanced.png'), ('b_input.png', 'b_enhanced.png')]
    assert app_script.compare(pairs, types.SimpleNamespace(index=1)) == pairs[1]
    assert app_script.compare(pairs[:1], types.SimpleNamespace(index=1)) == app_script.gr.skip()


def test_sigterm_deletes_the_folder_of_results_as_ctrl_c_does(served, tmp_path):
    url, folder, photos = served
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    for stop in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        server, address = serve(folder, env=dict(os.environ, TMPDIR=str(temporary)))
        client = gradio_client.Client(address, verbose=False)
        client.predict([gradio_client.handle_file(str(photos / 'odd.png'))], 'auto', 'none', api_name='/enhance')
        assert [name for name in os.listdir(temporary) if name.startswith('nerco_app_')]
        server.send_signal(stop)
        server.wait(60)
        assert not [name for name in os.listdir(temporary) if name.startswith('nerco_app_')], stop


def test_bad_uploads_get_a_message_and_the_app_keeps_serving(served, tmp_path):
    url, _, photos = served
    client = gradio_client.Client(url, verbose=False)
    (tmp_path / 'notes.png').write_text('not an image')
    Image.new('RGB', (100, 80)).save(tmp_path / 'large.png')
    for name, message in (('notes.png', 'notes.png is not an image this page can read'),
                          ('large.png', 'large.png has 100x80 pixels, more than this page takes (--max_pixels 6000)')):
        with pytest.raises(gradio_client.exceptions.AppError, match=message.replace('(', r'\(').replace(')', r'\)')):
            client.predict([gradio_client.handle_file(str(tmp_path / name))], 'auto', 'none', api_name='/enhance')
    result = client.predict([gradio_client.handle_file(str(photos / 'even.png'))], 'auto', 'none',
                            api_name='/enhance')
    assert np.asarray(Image.open(result[2][0])).shape == (40, 32, 3)


def test_missing_checkpoint_folder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        app_script.main(['--checkpoints', str(tmp_path / 'nothing'), '--port', str(free_port())])
    assert str(exit_info.value.code).startswith('error: ') and 'nothing' in str(exit_info.value.code)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason='no Chromium and ChromeDriver here (Debian packages '
                                                             'chromium and chromium-driver; .ci/run installs them)')
def test_a_browser_uploads_a_photo_and_shows_it_enhanced(served, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    url, folder, photos = served
    expected = enhanced_by_script(folder, photos, tmp_path / 'script')['odd.png']
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
                 '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 '--window-size=1400,1000', '--user-data-dir=%s' % (tmp_path / 'profile')):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '#uploads input[type=file]'))
        assert 'Model: %s, epoch latest' % folder in ' '.join(browser.find_element(By.ID, 'intro').text.split())
        browser.find_element(By.ID, 'enhance').click()  # no photo yet: a message, not errors
        wait.until(lambda b: 'Upload a photo first' in b.find_element(By.TAG_NAME, 'body').text)
        assert 'Error' not in browser.find_element(By.TAG_NAME, 'body').text
        browser.find_element(By.CSS_SELECTOR, '#uploads input[type=file]').send_keys(str(photos / 'odd.png'))
        images = "return [...document.querySelectorAll('%s img')].map(i => [i.src, i.naturalWidth, i.naturalHeight])"
        wait.until(lambda b: [img for img in b.execute_script(images % '#preview') if img[1:] == [53, 37]])
        browser.find_element(By.ID, 'enhance').click()
        shown = wait.until(lambda b: [img for img in b.execute_script(images % '#slider')
                                      if 'odd_enhanced' in img[0] and img[1] > 0])
        links = wait.until(lambda b: [a.get_attribute('href') for a in b.find_elements(By.CSS_SELECTOR, '#downloads a')
                                      if 'odd_enhanced.png' in (a.get_attribute('href') or '')])
        assert not browser.find_elements(By.CSS_SELECTOR, '#downloads input[type=file]')  # an output, not an upload
        assert not [e for e in browser.find_elements(By.ID, 'gallery') if e.is_displayed()]  # one photo: the slider
        time.sleep(1)
        browser.save_screenshot(str(tmp_path / 'page.png'))
    finally:
        browser.quit()
    src, width, height = shown[0]
    assert (width, height) == (53, 37)
    for address in (src, links[0]):
        with urllib.request.urlopen(address, timeout=30) as response:
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.read())).convert('RGB')), expected)
    assert Image.open(tmp_path / 'page.png').size[0] > 0
    shutil.copy(tmp_path / 'page.png', os.environ.get('NERCO_SCREENSHOT', str(tmp_path / 'kept.png')))


def test_out_of_gpu_memory_is_a_message_on_the_page(served, tmp_path):
    class FullGPU:
        def __call__(self, photo):
            raise torch.cuda.OutOfMemoryError('CUDA out of memory')

    photos = app_script.Photos(FullGPU(), MAX_PIXELS, 10 ** 6, str(tmp_path))
    with pytest.raises(app_script.gr.Error, match='out of GPU memory at 53x37; choose tiling "on" or a smaller photo'):
        photos([str(served[2] / 'odd.png')])


def test_a_photo_too_large_for_pil_to_open_is_a_message_on_the_page(tmp_path):
    import struct
    import zlib
    Image.new('RGB', (1, 1)).save(tmp_path / 'huge.png')
    data = bytearray((tmp_path / 'huge.png').read_bytes())
    header = b'IHDR' + struct.pack('>II', 20000, 10000) + bytes(data[24:29])  # 200 megapixels claimed
    data[12:33] = header + struct.pack('>I', zlib.crc32(header))
    (tmp_path / 'huge.png').write_bytes(bytes(data))
    photos = app_script.Photos(object(), MAX_PIXELS, 10 ** 6, str(tmp_path))
    with pytest.raises(app_script.gr.Error, match='huge.png is too large to open'):
        photos.read(str(tmp_path / 'huge.png'))


def test_tiling_auto_tiles_exactly_the_photos_above_tile_above(served, tmp_path):
    enhancer = load_enhancer(served[1])
    photos = app_script.Photos(enhancer, MAX_PIXELS, 100, str(tmp_path))
    used = []
    for kind in ('enhancer', 'tiled'):
        setattr(photos, kind, lambda photo, kind=kind: used.append(kind) or photo)
    for (height, width), tile, expected in (((10, 10), 'auto', 'enhancer'), ((10, 11), 'auto', 'tiled'),
                                            ((1, 1), 'on', 'tiled'), ((50, 50), 'off', 'enhancer')):
        photos.enhance_one(np.zeros((height, width, 3), np.uint8), tile, 'none')
        assert used.pop() == expected, (height, width, tile)


def test_a_u_net_model_is_served_untiled(tmp_path):
    """The out-of-core runner takes ResNet generators only: a U-Net model (--netG unet_128) enhances photos above
    --tile_above, or with tiling "on", in memory (it used to fail on them with a message that tiling cannot run)."""
    from models.nerco import Architecture, NeRCoInference
    from models.inference import Enhancer, InferenceModel
    from models.execution import Settings
    torch.manual_seed(0)
    enhancer = Enhancer(InferenceModel(NeRCoInference(Architecture(ngf=8, netG='unet_128')), torch.device('cpu'),
                                       Settings()))
    photos = app_script.Photos(enhancer, MAX_PIXELS, 100, str(tmp_path))
    photo = image_pair(1, (20, 30))[1]
    expected = enhancer(photo)
    for tile in ('auto', 'on'):
        assert np.array_equal(photos.enhance_one(photo, tile, 'none'), expected), tile


def test_a_request_whose_page_closes_stops_at_its_next_layer_and_keeps_nothing(served, tmp_path, capsys):
    """The page closes while the third layer (or band) is computed: the job stops there, in memory and tiled, its
    outputs so far are deleted; another page closing, or an earlier close, stops nothing."""
    photos = app_script.Photos(load_enhancer(served[1]), MAX_PIXELS, 10 ** 6, str(tmp_path))
    paths = [str(served[2] / 'odd.png'), str(served[2] / 'even.png')]
    mine, other = types.SimpleNamespace(session_hash='mine'), types.SimpleNamespace(session_hash='other')
    for tile in ('off', 'on'):
        steps = []

        def step(closing):
            steps.append(closing)
            if len(steps) == 3:
                photos.page_closed(closing)
            photos.check()

        for closing, stopped in ((mine, True), (other, False)):
            steps.clear()
            photos.enhancer.step = photos.tiled.step = lambda: step(closing)
            kept = len(os.listdir(tmp_path))
            result = photos(paths, tile, 'none', mine)
            if stopped:
                assert result == (app_script.gr.skip(),) * 4 and len(steps) == 3, tile
                assert len(os.listdir(tmp_path)) == kept and 'its page was closed' in capsys.readouterr().out
            else:
                assert len(result[2]) == 2 and len(steps) > 3 and len(os.listdir(tmp_path)) == kept + 1, tile
    photos.enhancer.step = photos.check
    assert len(photos([paths[0]], 'off', 'none', mine)[2]) == 1  # a new request of a page that closed before runs


def test_a_waiting_request_sees_its_place_and_no_made_up_time_left(served, tmp_path, monkeypatch):
    """Gradio would estimate a waiting request's time from earlier ones' mean (a 1x1 request behind a large photo
    reading "0.3 s"); the page shows none. A page closing mid-request (its heartbeat ends) stops the request."""
    monkeypatch.setenv('GRADIO_HEARTBEAT_INTERVAL', '0.2')
    photos = app_script.Photos(load_enhancer(served[1]), MAX_PIXELS, 10 ** 6, str(tmp_path))
    started, release = app_script.threading.Event(), app_script.threading.Event()
    slow = photos.check

    def check():  # the first request's photo takes until the test releases it
        started.set()
        release.wait(60)
        slow()

    page = app_script.build(photos, [], False, 'tiny')
    _, url, _ = page.launch(prevent_thread_lock=True, quiet=True, server_port=free_port())
    try:
        photo = [gradio_client.handle_file(str(served[2] / 'odd.png'))]
        gradio_client.Client(url, verbose=False).predict(photo, 'off', 'none', api_name='/enhance')
        photos.enhancer.step = check
        first_client = gradio_client.Client(url, verbose=False)
        first_client.submit(photo, 'off', 'none', api_name='/enhance')
        assert started.wait(60)
        second = gradio_client.Client(url, verbose=False).submit(photo, 'off', 'none', api_name='/enhance')
        deadline = time.time() + 30
        while second.status().code.name != 'IN_QUEUE' and time.time() < deadline:
            time.sleep(0.1)
        status = second.status()
        assert status.code.name == 'IN_QUEUE' and status.rank == 0 and status.eta is None, status
        first_client.close()  # its heartbeat ends, as when a browser tab closes
        deadline = time.time() + 30
        while not photos.closed.is_set() and time.time() < deadline:
            time.sleep(0.1)
        assert photos.closed.is_set()
        release.set()
        photos.enhancer.step = slow
        assert len(second.result(timeout=60)[2]) == 1
    finally:
        release.set()
        page.close()


def test_a_failed_request_keeps_nothing(served, tmp_path):
    (tmp_path / 'notes.png').write_text('not an image')
    out = tmp_path / 'out'
    out.mkdir()
    photos = app_script.Photos(load_enhancer(served[1]), MAX_PIXELS, 10 ** 6, str(out))
    with pytest.raises(app_script.gr.Error, match='notes.png is not an image'):
        photos([str(served[2] / 'odd.png'), str(tmp_path / 'notes.png')])
    assert os.listdir(out) == []
