"""Scoring a folder of enhanced images: pairing with ground truth by file stem, per-image metrics, a CSV, a JSON
summary, and a metrics table on the results page."""
import csv
import html
import io
import math
import os
import re
import sys

import numpy as np
from tqdm import tqdm

from metrics import scores
from util.html import HTML
from util.images import find_images, images_by_stem, load_rgb
from util.util import UserError, atomic_write, strict_json

OUTPUT_SUFFIX, INPUT_SUFFIX = '_fake_B', '_real_A'
COLUMNS = ('psnr', 'ssim', 'lpips', 'niqe', 'loe')
LOWER_IS_BETTER = {'lpips', 'niqe', 'loe'}
SIZE_LIMITED = ('ssim', 'niqe')
METRICS_BLOCK = re.compile(r'<div id="metrics">.*?</div>\s*', re.S)


def find_outputs(results, stems=None):
    """The enhanced images under results (a test.py result folder, its images/ folder, or any image folder), or
    only those named in stems: ({stem: output}, {stem: input} from test.py's *_real_A copies, the results page or
    None)."""
    if not os.path.isdir(results):
        raise UserError('%s: folder not found; give the folder of enhanced images (or test.py\'s test_<epoch>)'
                        % results)
    page = os.path.join(results, 'index.html')
    folder = os.path.join(results, 'images') if os.path.isdir(os.path.join(results, 'images')) else results
    outputs = images_by_stem(folder, OUTPUT_SUFFIX, what='enhanced images')
    inputs = images_by_stem(folder, INPUT_SUFFIX) if outputs else {}
    if outputs:
        others = len(find_images(folder, recursive=False)) - len(outputs) - len(inputs)
        if others:
            print('note: %s: scoring its %d image(s) named <stem>%s (test.py\'s outputs); its %d other image(s) are '
                  'left out' % (folder, len(outputs), OUTPUT_SUFFIX, others), file=sys.stderr)
    outputs = outputs or images_by_stem(folder, what='enhanced images')  # a.png and a.jpg: one would be dropped
    if stems is not None:
        wanted = set(stems)
        outputs = {stem: path for stem, path in outputs.items() if stem in wanted}
    if not outputs:
        raise UserError('%s: no images found; it should hold the enhanced images' % folder)
    return outputs, inputs, page if os.path.isfile(page) else None


def too_small(column, ssim_mode):
    """Why an image gets NaN for column (one of SIZE_LIMITED)."""
    if column == 'ssim':
        return 'smaller than the SSIM window of %d pixels' % scores.SSIM_WINDOW[ssim_mode]
    return 'without two complete NIQE blocks of %dx%d pixels' % (scores.NIQE_BLOCK, scores.NIQE_BLOCK)


def read(path, skipped):
    try:
        return np.asarray(load_rgb(path))
    except Exception as exc:
        tqdm.write('skipped %s: %s: %s' % (path, exc.__class__.__name__, exc), file=sys.stderr)
        skipped.append(path)
        return None


def ssim_convention(mode):
    return ('PSNR and SSIM on RGB uint8 (data range 255); SSIM averaged over R, G, B with skimage '
            'structural_similarity(%s)' % ', '.join('%s=%s' % kv for kv in scores.SSIM_MODES[mode].items()))


def evaluate(results, gt=None, inputs=None, ssim_mode='gaussian', loe=False, niqe='gray', lpips=True,
             device='cpu', stems=None):
    """Score every enhanced image in results (or those named in stems: what test.py has just written); write
    metrics.csv and metrics.json beside them and a table on the results page if there is one. niqe is the
    channel NIQE sees ('gray' or 'y'), or None to skip it. An image too small for a metric gets NaN there, with a
    warning, and is left out of that mean. Returns the summary (also in metrics.json)."""
    outputs, sources, page = find_outputs(results, stems)
    if gt and not os.path.isdir(gt):
        raise UserError('--gt %s: folder not found; it should hold the ground-truth images' % gt)
    truths = images_by_stem(gt, what='ground truth') if gt else {}
    if gt and not set(outputs) & set(truths):
        raise UserError('--gt %s: no file stem matches an enhanced image (e.g. %s); name ground truth like the '
                        'inputs' % (gt, next(iter(outputs))))
    if inputs:
        if not os.path.isdir(inputs):
            raise UserError('--inputs %s: folder not found; it should hold the low-light inputs' % inputs)
        sources = images_by_stem(inputs, what='--inputs')
    notes = [ssim_convention(ssim_mode)] if truths else []
    lpips_model = None
    if truths and lpips:
        try:
            lpips_model = scores.LPIPS(device)
        except FileNotFoundError as exc:
            notes.append(str(exc))
    scorers = {'lpips': lpips_model, 'niqe': scores.NIQE(niqe) if niqe else None, 'ssim_mode': ssim_mode}
    rows, skipped = score(outputs, truths, sources if loe else {}, scorers)
    if not rows:
        raise UserError('%s: none of its %d image(s) could be scored (e.g. %s is unreadable); fix or remove them'
                        % (folder_of(outputs, page), len(outputs), skipped[0]))
    columns = [c for c in COLUMNS if any(c in row for row in rows)]
    means = column_means(rows, columns)
    if truths:
        missing = sorted(set(outputs) - set(truths))
        if missing:
            notes.append('%d image(s) without ground truth (e.g. %s): no PSNR / SSIM / LPIPS for them'
                         % (len(missing), missing[0]))
    for column in SIZE_LIMITED:
        nan = [row['image'] for row in rows if column in row and math.isnan(row[column])]
        if nan:
            notes.append('%s is NaN for %d image(s) %s (e.g. %s); the mean leaves them out'
                         % (column.upper(), len(nan), too_small(column, ssim_mode), nan[0]))
    summary = {'images': len(rows), 'mean': means, 'skipped': skipped, 'notes': notes,
               'lower_is_better': sorted(LOWER_IS_BETTER & set(columns))}
    folder = folder_of(outputs, page)
    write_csv(os.path.join(folder, 'metrics.csv'), rows, columns, means)
    atomic_write(os.path.join(folder, 'metrics.json'),
                 lambda f: f.write(strict_json({**summary, 'per_image': rows}).encode()))
    if page:
        add_table(page, summary, columns)
    print_summary(summary, folder)
    return dict(summary, per_image=rows, outputs=outputs)


def folder_of(outputs, page):
    """Where evaluate() writes metrics.csv: beside the results page, else beside the images."""
    return os.path.dirname(page) if page else os.path.dirname(next(iter(outputs.values())))


def check_comparison_folder(out):
    """A UserError when out holds a page that no comparison wrote (a test.py results page), which compare() would
    replace."""
    if os.path.isfile(os.path.join(out, 'index.html')) and not os.path.isfile(os.path.join(out, 'comparison.csv')):
        raise UserError('--out %s holds a page that no comparison wrote (%s); choose another --out folder'
                        % (out, os.path.join(out, 'index.html')))


def compare(runs, out):
    """Put several scored result folders side by side: {method name: evaluate()'s summary} -> out/comparison.csv
    and out/comparison.md (one row per method, one column per metric) and out/index.html (each image across all
    methods, with its metrics). Returns the path of the page."""
    check_comparison_folder(out)
    columns = [c for c in COLUMNS if any(c in run['mean'] for run in runs.values())]
    head = ['method', 'images', *('%s%s' % (c, ' (lower is better)' if c in LOWER_IS_BETTER else '') for c in columns)]
    table = [[name, str(run['images']), *('%.4f' % run['mean'][c] if c in run['mean'] else '' for c in columns)]
             for name, run in runs.items()]
    text = io.StringIO()
    csv.writer(text).writerows([head, *table])
    markdown = '\n'.join('| %s |' % ' | '.join(row) for row in [head, ['---'] * len(head), *table]) + '\n'
    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, 'comparison.csv'), lambda f: f.write(text.getvalue().encode()))
    atomic_write(os.path.join(out, 'comparison.md'), lambda f: f.write(markdown.encode()))
    page = HTML(out, 'Comparison of %s' % ', '.join(runs))
    page.add_raw('<pre>%s</pre>' % html.escape(markdown))
    by_stem = {}
    for name, run in runs.items():
        rows = {row['image']: row for row in run['per_image']}
        by_stem[name] = {stem: rows[os.path.basename(path)] for stem, path in run['outputs'].items()
                         if os.path.basename(path) in rows}
    for stem in sorted({stem for run in runs.values() for stem in run['outputs']}):
        shown = [name for name in runs if stem in by_stem[name]]
        links = [os.path.relpath(runs[name]['outputs'][stem], out) for name in shown]
        captions = ['%s: %s' % (name, ', '.join('%s %.4f' % (c.upper(), by_stem[name][stem][c]) for c in columns
                                                 if c in by_stem[name][stem])) for name in shown]
        page.add_header(stem)
        page.add_images(links, captions, links, width=320)
    return page.save()


def image_scores(output, path, truth, truth_path, scorers):
    """{metric: value} for one enhanced image (a uint8 array, read from path): PSNR, SSIM and LPIPS against its
    ground truth (read from truth_path; None if there is none) and NIQE. scorers holds the LPIPS and NIQE models
    (None to leave them out) and the SSIM mode."""
    row = {}
    if truth is not None:
        if truth.shape != output.shape:
            raise UserError('%s is %dx%d but its ground truth %s is %dx%d; they must have the same size'
                            % (path, output.shape[1], output.shape[0], truth_path, truth.shape[1], truth.shape[0]))
        row.update(psnr=scores.psnr(output, truth), ssim=scores.ssim(output, truth, scorers['ssim_mode']))
        if scorers['lpips']:
            row['lpips'] = scorers['lpips'](output, truth)
    if scorers['niqe']:
        row['niqe'] = scorers['niqe'](output)
    return row


def column_means(rows, columns):
    """The mean of each column that some row has, leaving NaN out (NaN when every value is NaN)."""
    means = {}
    for c in columns:
        values = np.array([row[c] for row in rows if c in row], dtype=np.float64)
        known = values[~np.isnan(values)]
        if values.size:
            means[c] = float(known.mean()) if known.size else float('nan')
    return means


def score(outputs, truths, sources, scorers):
    """([{'image': name, metric: value}] for each readable output, [unreadable paths]): PSNR, SSIM and LPIPS
    where a ground truth has the output's stem, NIQE, and LOE where a low-light source does."""
    rows, skipped = [], []
    for stem, path in tqdm(outputs.items(), desc='evaluating', unit='img', file=sys.stdout, dynamic_ncols=True,
                           mininterval=0.1 if sys.stdout.isatty() else 30):
        output = read(path, skipped)
        if output is None:
            continue
        truth = read(truths[stem], skipped) if stem in truths else None
        if stem in truths and truth is None:
            continue
        row = {'image': os.path.basename(path), **image_scores(output, path, truth, truths.get(stem), scorers)}
        for column in SIZE_LIMITED:
            if math.isnan(row.get(column, 0)):
                tqdm.write('warning: %s: %s; %s is NaN' % (path, too_small(column, scorers['ssim_mode']),
                                                           column.upper()), file=sys.stderr)
        if stem in sources:
            source = read(sources[stem], skipped)
            if source is not None:
                row['loe'] = scores.loe(output, source)
        rows.append(row)
    return rows, skipped


def write_csv(path, rows, columns, means):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(['image', *columns])
    for row in rows + [{'image': 'mean', **means}]:
        writer.writerow([row['image'], *('%.6f' % row[c] if c in row else '' for c in columns)])
    atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def add_table(page, summary, columns):
    """Put the means (replacing an earlier table) at the top of the results page."""
    head = ''.join('<th>%s%s</th>' % (c.upper(), ' &darr;' if c in LOWER_IS_BETTER else ' &uarr;') for c in columns)
    cells = ''.join('<td>%.4f</td>' % summary['mean'][c] for c in columns)
    notes = ''.join('<p>%s</p>' % html.escape(note) for note in summary['notes'])
    block = ('<div id="metrics"><h3>Metrics: mean over %d image(s) (per image: metrics.csv)</h3>'
             '<table border="1"><tr>%s</tr><tr>%s</tr></table>%s</div>\n' % (summary['images'], head, cells, notes))
    with open(page, encoding='utf-8') as f:
        text = METRICS_BLOCK.sub('', f.read())
    at = text.find('<body>') + len('<body>') if '<body>' in text else 0
    text = text[:at] + '\n' + block + text[at:]
    atomic_write(page, lambda f: f.write(text.encode('utf-8')))


def print_summary(summary, folder):
    print('mean over %d image(s): %s' % (summary['images'], ', '.join(
        '%s %.4f' % (name.upper(), value) for name, value in summary['mean'].items())))
    for note in summary['notes']:
        print('  ' + note)
    print('per image: %s' % os.path.join(folder, 'metrics.csv'))
    if summary['skipped']:
        print('%d image(s) could not be read and were skipped' % len(summary['skipped']))
