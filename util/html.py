"""Results pages: an index.html with headers and rows of captioned images, written with dominate."""
import os
from urllib.parse import quote

import dominate
from dominate.tags import a, br, h3, img, p, table, td, tr
from dominate.util import raw

from util.util import atomic_write


class HTML:
    """A page at web_dir/index.html whose images live in web_dir/images (paths on the page are relative)."""

    def __init__(self, web_dir, title):
        self.title = title
        self.web_dir = web_dir
        self.img_dir = os.path.join(web_dir, 'images')
        os.makedirs(self.img_dir, exist_ok=True)
        self.doc = dominate.document(title=title)

    def get_image_dir(self):
        return self.img_dir

    def add_header(self, text):
        with self.doc:
            h3(text)

    def add_raw(self, markup):
        """Insert markup as it is (e.g. an inline SVG chart)."""
        with self.doc:
            raw(markup)

    def add_images(self, ims, txts, links, width=400):
        """One table row: each image (a path relative to web_dir) with its caption, linking to `links`. The paths
        are URL-encoded from the bytes of the file names, so that a name with '#', '%', '?', spaces, non-ASCII
        letters or bytes that are not UTF-8 still shows."""
        with self.doc:
            with table(border=1, style='table-layout: fixed;'):
                with tr():
                    for im, txt, link in zip(ims, txts, links):
                        with td(style='word-wrap: break-word;', halign='center', valign='top'):
                            with p():
                                with a(href=quote(os.fsencode(link))):
                                    img(style='width:%dpx' % width, src=quote(os.fsencode(im)))
                                br()
                                p(txt)

    def save(self):
        path = os.path.join(self.web_dir, 'index.html')
        # a caption holding a file name that is not UTF-8 shows its undecodable bytes as U+FFFD
        text = self.doc.render().encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
        atomic_write(path, lambda f: f.write(text.encode('utf-8')))
        return path
