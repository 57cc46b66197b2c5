"""Movies of per-particle values: frames rasterised with NumPy, encoded to MP4 (H.264, yuv420p, which
browsers, slides and common players open) by imageio's ffmpeg plugin (imageio-ffmpeg ships the binary).

What is the same in every frame (axes, colour bars, labels, the verdict's mark) is drawn once by matplotlib
into a template image; each frame copies it and stamps one disk per particle into each panel's pixels,
coloured through that panel's colour scale, fixed over the whole movie, with a time stamp. No matplotlib figure is drawn per
frame: stamping N disks is one indexed assignment of N × (disk pixels) values.
"""

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from activeflow import io  # noqa: E402

# H.264 with yuv420p needs even sides; 16 also avoids ffmpeg's resizing for macro blocks.
BLOCK = 16


class Panel(NamedTuple):
    """One axes of a frame: what it shows and on which colour scale."""

    title: str
    label: str  # of the colour bar
    cmap: str
    norm: colors.Normalize


class Template(NamedTuple):
    """The fixed part of every frame and where the data go in it: one pixel box per panel, all over the
    same data `extent`."""

    image: np.ndarray  # (H, W, 3) uint8
    boxes: tuple[tuple[int, int, int, int], ...]  # each axes in pixels: row0, row1, col0, col1
    extent: tuple[float, float, float, float]  # the data shown in each: x0, x1, y0, y1
    cmaps: tuple[colors.Colormap, ...]
    norms: tuple[colors.Normalize, ...]


def template(extent: tuple[float, float, float, float], panels: list[Panel], pixels: int,
             mark: str | None = None) -> Template:
    """Square axes over `extent` side by side, one per panel, each with its colour bar and title, `pixels`
    high (rounded to the codec's block), optionally with the red banner of results that are not trusted."""
    dpi, n = 100, len(panels)
    height = BLOCK * max(round(pixels / BLOCK), 8)
    width = BLOCK * round(1.25 * n * height / BLOCK)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    font = min(max(height / 55, 5.0), 12.0)  # points: legible at every frame size
    side = 0.75 * height / width  # the axes' width as a fraction of the figure's, for a square of 0.75 h
    axes = []
    for k, panel in enumerate(panels):
        left = k / n + 0.06 / n
        ax = fig.add_axes((left, 0.06, side, 0.8))
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(panel.title, fontsize=font)
        cax = fig.add_axes((left + side + 0.03 / n, 0.06, 0.03 / n, 0.8))
        fig.colorbar(plt.cm.ScalarMappable(norm=panel.norm, cmap=panel.cmap), cax=cax).set_label(
            panel.label, fontsize=font)
        cax.tick_params(labelsize=0.85 * font)
        cax.yaxis.get_offset_text().set_fontsize(0.85 * font)
        axes.append(ax)
    if mark:
        fig.text(0.5, 0.995, mark, ha="center", va="top", color="white", fontsize=0.85 * font, fontweight="bold",
                 bbox=dict(facecolor="#c0392b", edgecolor="none", pad=2))
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    h = image.shape[0]
    boxes = []
    for ax in axes:
        bbox = ax.get_window_extent()  # display pixels, origin bottom left
        boxes.append((int(round(h - bbox.y1)), int(round(h - bbox.y0)), int(round(bbox.x0)), int(round(bbox.x1))))
    plt.close(fig)
    return Template(image, tuple(boxes), extent, tuple(plt.get_cmap(p.cmap) for p in panels),
                    tuple(p.norm for p in panels))


def disk_offsets(radius: float) -> np.ndarray:
    """Pixel offsets (rows, cols) of a disk of `radius` pixels (at least the centre pixel)."""
    r = max(int(np.ceil(radius)), 0)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dx**2 + dy**2 <= max(radius, 0.5) ** 2
    return np.stack([dy[inside], dx[inside]], axis=1)


def frame(t: Template, positions: np.ndarray, values: list[np.ndarray], radius: float, stamp: str) -> np.ndarray:
    """One frame: the template with, in each panel, a disk of data radius `radius` per particle in the
    colour of its value in that panel (`values`: one (N,) array per panel; particles drawn in the order
    given, later ones on top), and `stamp` written at the top left of the first panel."""
    image = t.image.copy()
    x0, x1, y0, y1 = t.extent
    for (row0, row1, col0, col1), cmap, norm, v in zip(t.boxes, t.cmaps, t.norms, values, strict=True):
        scale = (col1 - col0) / (x1 - x0)
        rows = row1 - (positions[:, 1] - y0) * scale
        cols = col0 + (positions[:, 0] - x0) * scale
        rgb = (np.asarray(cmap(norm(v)))[:, :3] * 255).round().astype(np.uint8)
        offsets = disk_offsets(radius * scale)
        r = np.rint(rows)[:, None].astype(int) + offsets[None, :, 0]
        c = np.rint(cols)[:, None].astype(int) + offsets[None, :, 1]
        inside = (r >= row0) & (r < row1) & (c >= col0) & (c < col1)
        image[r[inside], c[inside]] = np.broadcast_to(rgb[:, None, :], (*r.shape, 3))[inside]
    pil = Image.fromarray(image)
    row0, _, col0, _ = t.boxes[0]
    ImageDraw.Draw(pil).text((col0 + 4, row0 + 4), stamp, fill=(0, 0, 0))
    return np.asarray(pil)


@contextlib.contextmanager
def _ffmpeg_quietly():
    """ffmpeg is started by fork and exec at once: the child runs no Python, so the warning that JAX's
    threads could deadlock a forked interpreter does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def write_mp4(frames: Iterable[np.ndarray], path: str | Path, fps: float) -> int:
    """Encode the frames (equal (H, W, 3) uint8 arrays, sides multiples of 16) as H.264/yuv420p MP4,
    atomically: on any failure nothing is left under `path`. Returns the number of frames."""
    import imageio.v2 as imageio

    count = 0
    with io.atomic_path(path) as tmp, _ffmpeg_quietly():
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=BLOCK, ffmpeg_log_level="error")
        try:
            for image in frames:
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                    raise ValueError(f"{path}: frame {count} is not an (H, W, 3) uint8 image "
                                     f"({image.dtype}, shape {image.shape})")
                writer.append_data(image)
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise ValueError(f"{path}: no frames to encode")
    return count


def write_png(image: np.ndarray, path: str | Path) -> None:
    with io.atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def frames_of(t: Template, positions: np.ndarray, values: list[np.ndarray], times: np.ndarray, radius: float,
              time_label: str = "t") -> Iterator[np.ndarray]:
    """The frames of a movie: positions (T, N, 2) and, per panel, values (T, N) at `times` (T,)."""
    for k in range(len(times)):
        yield frame(t, positions[k], [v[k] for v in values], radius, f"{time_label} = {times[k]:.4g}")


def upper_norm(values: np.ndarray, quantile: float = 0.99) -> colors.Normalize:
    """A colour scale from 0 to the `quantile` of the values over the whole movie (non-negative values)."""
    return colors.Normalize(0.0, float(np.quantile(values, quantile)) or 1.0)


def symmetric_norm(values: np.ndarray, quantile: float = 0.99) -> colors.Normalize:
    """A colour scale centred on 0, saturating at the `quantile` of |value| over the whole movie."""
    bound = float(np.quantile(np.abs(values), quantile)) or 1.0
    return colors.Normalize(-bound, bound)


def info(path: str | Path) -> dict[str, Any]:
    """Frame count, size and duration of an MP4 as imageio reads it (the tests and the log)."""
    import imageio.v2 as imageio

    with _ffmpeg_quietly():
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            meta = reader.get_meta_data()
            count = reader.count_frames()
        finally:
            reader.close()
    return dict(frames=count, size=tuple(meta["size"]), fps=float(meta["fps"]), codec=meta.get("codec"),
                duration=count / float(meta["fps"]))


def read_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` of an MP4, decoded (H, W, 3) uint8."""
    import imageio.v2 as imageio

    with _ffmpeg_quietly():
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            return reader.get_data(index)
        finally:
            reader.close()


def ring_flow_frames(density: np.ndarray, extent: tuple[float, float, float, float], xs: np.ndarray,
                     gs: np.ndarray, times: np.ndarray, length: float, a: float, pixels: int,
                     mark: str | None = None, trail: int = 20) -> Iterator[np.ndarray]:
    """Frames of the ring's probability flow (few points, so matplotlib draws each frame): left, the two
    particles on the ring in the frame of particle 1 (fixed at the top), one partner per starting point;
    right, the phase portrait (x, g) over the stationary density with the moving points and their trails.
    xs, gs: (frames, starts) displacements and active-force differences."""
    dpi = 100
    height = BLOCK * max(round(pixels / BLOCK), 8)
    width = BLOCK * round(2.1 * height / BLOCK)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    font = min(max(height / 55, 5.0), 12.0)
    ring = fig.add_axes((0.03, 0.08, 0.42 * height / width * 2.1, 0.8))
    phase = fig.add_axes((0.55, 0.12, 0.42, 0.76))
    colours = plt.get_cmap("tab10")(np.arange(xs.shape[1]) % 10)
    theta = np.linspace(0, 2 * np.pi, 361)
    ring.plot(np.cos(theta), np.sin(theta), color="0.6", lw=1)
    ring.set_xlim(-1.3, 1.3)
    ring.set_ylim(-1.3, 1.3)
    ring.set_aspect("equal")
    ring.axis("off")
    ring.set_title("the ring, particle 1 fixed", fontsize=font)
    radius = 2 * np.pi * a / length  # the disks' radius on a unit circle
    ring.add_patch(plt.Circle((0, 1), radius, color="black"))
    partners = [ring.add_patch(plt.Circle((0, 1), radius, color=c, alpha=0.8)) for c in colours]
    phase.imshow(density, origin="lower", extent=extent, aspect="auto", cmap="Greys")
    phase.set_xlim(extent[0], extent[1])
    phase.set_ylim(extent[2], extent[3])
    phase.set_xlabel("x = x¹ − x²", fontsize=font)
    phase.set_ylabel("g = g¹ − g²", fontsize=font)
    phase.tick_params(labelsize=0.85 * font)
    phase.set_title(r"probability flow $\dot R = v(R)$", fontsize=font)
    trails = [phase.plot([], [], color=c, lw=1)[0] for c in colours]
    points = phase.scatter(xs[0], gs[0], c=colours, s=4 * font, zorder=3)
    stamp = fig.text(0.03, 0.95, "", fontsize=font)
    if mark:
        fig.text(0.5, 0.995, mark, ha="center", va="top", color="white", fontsize=0.85 * font, fontweight="bold",
                 bbox=dict(facecolor="#c0392b", edgecolor="none", pad=2))
    try:
        for k in range(len(times)):
            angle = np.pi / 2 - 2 * np.pi * xs[k] / length
            for p, (cx, cy) in zip(partners, zip(np.cos(angle), np.sin(angle))):
                p.set_center((cx, cy))
            start = max(k - trail, 0)
            for p, line in enumerate(trails):
                seg_x, seg_g = xs[start:k + 1, p].copy(), gs[start:k + 1, p]
                jump = np.abs(np.diff(seg_x)) > length / 2  # break the trail where x wraps around the ring
                seg_x = np.insert(seg_x, np.where(jump)[0] + 1, np.nan)
                line.set_data(seg_x, np.insert(seg_g, np.where(jump)[0] + 1, np.nan))
            points.set_offsets(np.stack([xs[k], gs[k]], axis=1))
            stamp.set_text(f"t = {times[k]:.4g}")
            fig.canvas.draw()
            yield np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)
