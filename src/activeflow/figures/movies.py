"""Movies of per-particle values: frames rasterised with NumPy, encoded to MP4 (H.264, yuv420p, which
browsers, slides and common players open) by imageio's ffmpeg plugin (imageio-ffmpeg ships the binary).

What is the same in every frame (axes, colour bar, labels, the verdict's mark) is drawn once by matplotlib
into a template image; each frame copies it and stamps one disk per particle into the axes' pixels, coloured
through a colour scale fixed over the whole movie, with a time stamp. No matplotlib figure is drawn per
frame: stamping N disks is one indexed assignment of N × (disk pixels) values.
"""

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


class Template(NamedTuple):
    """The fixed part of every frame and where the data go in it."""

    image: np.ndarray  # (H, W, 3) uint8
    box: tuple[int, int, int, int]  # the axes in pixels: row0, row1, col0, col1
    extent: tuple[float, float, float, float]  # the data shown there: x0, x1, y0, y1
    cmap: colors.Colormap
    norm: colors.Normalize


def template(extent: tuple[float, float, float, float], norm: colors.Normalize, cmap: str, label: str,
             title: str, pixels: int, mark: str | None = None) -> Template:
    """A square axes over `extent` with a colour bar (`label`) and a title, `pixels` high (rounded to the
    codec's block), optionally with the red banner of results that are not trusted."""
    dpi = 100
    height = BLOCK * max(round(pixels / BLOCK), 8)
    width = BLOCK * round(1.25 * height / BLOCK)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.06, 0.06, 0.75 * height / width * 1.0, 0.8))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    font = min(max(height / 55, 5.0), 12.0)  # points: legible at every frame size
    ax.set_title(title, fontsize=font)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cax = fig.add_axes((0.06 + 0.75 * height / width + 0.03, 0.06, 0.03, 0.8))
    fig.colorbar(mappable, cax=cax).set_label(label, fontsize=font)
    cax.tick_params(labelsize=0.85 * font)
    if mark:
        fig.text(0.5, 0.995, mark, ha="center", va="top", color="white", fontsize=0.85 * font, fontweight="bold",
                 bbox=dict(facecolor="#c0392b", edgecolor="none", pad=2))
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    bbox = ax.get_window_extent()  # display pixels, origin bottom left
    plt.close(fig)
    h = image.shape[0]
    box = (int(round(h - bbox.y1)), int(round(h - bbox.y0)), int(round(bbox.x0)), int(round(bbox.x1)))
    return Template(image, box, extent, plt.get_cmap(cmap), norm)


def disk_offsets(radius: float) -> np.ndarray:
    """Pixel offsets (rows, cols) of a disk of `radius` pixels (at least the centre pixel)."""
    r = max(int(np.ceil(radius)), 0)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dx**2 + dy**2 <= max(radius, 0.5) ** 2
    return np.stack([dy[inside], dx[inside]], axis=1)


def frame(t: Template, positions: np.ndarray, values: np.ndarray, radius: float, stamp: str) -> np.ndarray:
    """One frame: the template with a disk of data radius `radius` per particle, in the colour of its value
    (particles drawn in the order given, later ones on top), and `stamp` written at the top left."""
    image = t.image.copy()
    row0, row1, col0, col1 = t.box
    x0, x1, y0, y1 = t.extent
    scale = (col1 - col0) / (x1 - x0)
    cols = col0 + (positions[:, 0] - x0) * scale
    rows = row1 - (positions[:, 1] - y0) * scale
    rgb = (np.asarray(t.cmap(t.norm(values)))[:, :3] * 255).round().astype(np.uint8)
    offsets = disk_offsets(radius * scale)
    r = np.rint(rows)[:, None].astype(int) + offsets[None, :, 0]
    c = np.rint(cols)[:, None].astype(int) + offsets[None, :, 1]
    inside = (r >= row0) & (r < row1) & (c >= col0) & (c < col1)
    colour = np.broadcast_to(rgb[:, None, :], (*r.shape, 3))
    image[r[inside], c[inside]] = colour[inside]
    pil = Image.fromarray(image)
    ImageDraw.Draw(pil).text((col0 + 4, row0 + 4), stamp, fill=(0, 0, 0))
    return np.asarray(pil)


def write_mp4(frames: Iterable[np.ndarray], path: str | Path, fps: float) -> int:
    """Encode the frames (equal (H, W, 3) uint8 arrays, sides multiples of 16) as H.264/yuv420p MP4,
    atomically: on any failure nothing is left under `path`. Returns the number of frames."""
    import imageio.v2 as imageio

    count = 0
    with io.atomic_path(path) as tmp, warnings.catch_warnings():
        # ffmpeg is started by fork and exec at once: the child runs no Python, so the warning that JAX's
        # threads could deadlock a forked interpreter does not apply.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
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


def frames_of(t: Template, positions: np.ndarray, values: np.ndarray, times: np.ndarray, radius: float,
              time_label: str = "t") -> Iterator[np.ndarray]:
    """The frames of a movie: positions (T, N, 2) and values (T, N) at `times` (T,)."""
    for k in range(len(times)):
        yield frame(t, positions[k], values[k], radius, f"{time_label} = {times[k]:.4g}")


def symmetric_norm(values: np.ndarray, quantile: float = 0.99) -> colors.Normalize:
    """A colour scale centred on 0, saturating at the `quantile` of |value| over the whole movie."""
    bound = float(np.quantile(np.abs(values), quantile)) or 1.0
    return colors.Normalize(-bound, bound)


def info(path: str | Path) -> dict[str, Any]:
    """Frame count, size and duration of an MP4 as imageio reads it (the tests and the log)."""
    import imageio.v2 as imageio

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
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

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        reader = imageio.get_reader(path, format="FFMPEG")
        try:
            return reader.get_data(index)
        finally:
            reader.close()
