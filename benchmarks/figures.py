"""README pictures from a model: a grid of samples and an inpainting example, in one run.

    python benchmarks/figures.py --pretrained fashion_mnist --out docs/ [--num 32] [--seed 0]
    python benchmarks/figures.py --run-dir runs/quality/gated_pixelcnn --out docs/ --samples-only

Writes OUT/NAME_samples.png (NUM images, seeds (SEED, i)) and OUT/NAME_inpainting.png:
rows of 8 test images, the same with the bottom half hidden (grey), then
completions of the bottom half drawn with seeds (SEED, i), and prints the
bits/dim of the originals. Images are upscaled 3x (nearest) to be visible.
"""

import argparse
import os

import numpy as np

import keras_pixelcnn as kp
from keras_pixelcnn.data import load
from keras_pixelcnn.data.images import make_grid, save_png
from keras_pixelcnn.models.pretrained import load_pretrained
from keras_pixelcnn.training import load_run

SCALE = 3


def _save(path, images, columns):
    grid = make_grid(images, columns=columns)
    save_png(path, np.repeat(np.repeat(grid, SCALE, axis=0), SCALE, axis=1))
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained")
    source.add_argument("--run-dir")
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default=None, help="File name prefix [the model's name]")
    parser.add_argument("--num", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-only", action="store_true")
    args = parser.parse_args()
    model = load_pretrained(args.pretrained) if args.pretrained else load_run(args.run_dir)[1]
    name = args.name or args.pretrained or os.path.basename(os.path.normpath(args.run_dir))
    _save(os.path.join(args.out, f"{name}_samples.png"), kp.sample(model, args.num, seed=args.seed, batch_size=16),
          columns=8)
    if args.samples_only:
        return
    originals = load("fashion_mnist", "test[:8]").images
    known = np.zeros(originals.shape[1:], bool)
    known[: originals.shape[1] // 2] = True
    hidden = np.where(known, originals, 128).astype(np.uint8)
    filled = kp.complete(model, originals, known, seed=args.seed)
    _save(os.path.join(args.out, f"{name}_inpainting.png"), np.concatenate([originals, hidden, filled]), columns=8)
    print("bits/dim of the originals:", np.round(kp.bits_per_dim(model, originals), 3).tolist())


if __name__ == "__main__":
    main()
