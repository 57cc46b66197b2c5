"""Time to rasterise and encode a movie of many particles (the network's evaluation aside).

    python benchmarks/movie_encoding.py --particles 32768 --frames 200 --pixels 720 --panels 2

Random positions in a square box at packing fraction 0.5 (disks of radius 1), values from a smooth field
(and its square in a second panel, as the MIPS movies draw two fields); prints the seconds per frame of rasterising, the total with encoding, and the file's size.
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from activeflow.figures import movies


def main(particles: int, frames: int, pixels: int, fps: float, n_panels: int) -> None:
    rng = np.random.default_rng(0)
    side = math.sqrt(particles * math.pi / 0.5)
    x = rng.uniform(-side / 2, side / 2, (particles, 2))
    drift = rng.normal(scale=0.05 * side / frames, size=(frames, 1, 2)).cumsum(0)
    positions = (x[None] + drift + side / 2) % side - side / 2
    values = np.sin(positions[..., 0] / side * 6) * np.cos(positions[..., 1] / side * 4)
    panels = [movies.Panel(f"{particles} particles", "value", "RdBu_r", movies.symmetric_norm(values)),
              movies.Panel("its square", "value²", "magma", movies.upper_norm(values**2))][:n_panels]
    fields = [values, values**2][:n_panels]
    t = movies.template((-side / 2, side / 2, -side / 2, side / 2), panels, pixels)
    start = time.perf_counter()
    for k in range(5):
        movies.frame(t, positions[k], [f[k] for f in fields], 1.0, "t")
    per_frame = (time.perf_counter() - start) / 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "movie.mp4"
        start = time.perf_counter()
        n = movies.write_mp4(movies.frames_of(t, positions, fields, np.arange(frames) * 1.0, 1.0), path, fps)
        total = time.perf_counter() - start
        size = path.stat().st_size
    print(f"{particles} particles, {n} frames of {t.image.shape[1]}x{t.image.shape[0]} px: rasterising "
          f"{per_frame * 1e3:.0f} ms per frame; rasterising and encoding {total:.1f} s in all; {size / 1e6:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--particles", type=int, default=32768)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--pixels", type=int, default=720)
    parser.add_argument("--fps", type=float, default=10)
    parser.add_argument("--panels", type=int, default=2, choices=[1, 2], help="side by side, as the MIPS movie")
    args = parser.parse_args()
    main(args.particles, args.frames, args.pixels, args.fps, args.panels)
