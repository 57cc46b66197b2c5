"""Movies (`figures.movies`) and the flow lines they draw (`numerics.flow.flow_lines`, against an
adaptive ODE solver on the linear system's exact score): an MP4 decodes with the configured frame count, size and duration; a decoded
frame's colours map back to the particles' values of that frame within the colour map's resolution (after
H.264's lossy coding); a broken frame or an unwritable output is a clear error that leaves no file."""

import numpy as np
import pytest

from activeflow.errors import OutputWriteError
from activeflow.figures import movies


def scene(n_frames=6, seed=0):
    rng = np.random.default_rng(seed)
    # particles on a coarse grid (no overlaps), values varying from frame to frame
    grid = np.stack(np.meshgrid(np.linspace(-6, 6, 4), np.linspace(-6, 6, 4)), -1).reshape(-1, 2)
    positions = np.broadcast_to(grid, (n_frames, *grid.shape)) + rng.normal(scale=0.1, size=(n_frames, *grid.shape))
    values = rng.uniform(-1, 1, size=(n_frames, len(grid)))
    panels = [movies.Panel("signed", "value", "RdBu_r", movies.symmetric_norm(values, quantile=1.0)),
              movies.Panel("square", "value²", "magma", movies.upper_norm(values**2, quantile=1.0))]
    return movies.template((-8, 8, -8, 8), panels, 320), positions, [values, values**2]


def test_movie_decodes_with_the_configured_frames_size_and_duration(tmp_path):
    t, positions, values = scene()
    path = tmp_path / "m.mp4"
    assert movies.write_mp4(movies.frames_of(t, positions, values, np.arange(6) * 0.5, 0.8), path, fps=4) == 6
    got = movies.info(path)
    assert got["frames"] == 6 and got["fps"] == 4 and got["duration"] == pytest.approx(1.5)
    assert got["size"] == (t.image.shape[1], t.image.shape[0]) and t.image.shape[0] % 16 == 0
    assert got["codec"] == "h264"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mp4"]  # no partial file beside it


def test_decoded_colours_map_back_to_the_values_of_that_frame(tmp_path):
    t, positions, values = scene()
    path = tmp_path / "m.mp4"
    movies.write_mp4(movies.frames_of(t, positions, values, np.arange(6) * 0.5, 0.8), path, fps=4)
    k = 3
    decoded = movies.read_frame(path, k).astype(float)
    for (row0, row1, col0, col1), cmap, norm, v in zip(t.boxes, t.cmaps, t.norms, values):
        scale = (col1 - col0) / 16.0
        lut_values = np.linspace(norm.vmin, norm.vmax, 256)
        lut = np.asarray(cmap(norm(lut_values)))[:, :3] * 255
        errors, other = [], []
        for (px, py), value, later in zip(positions[k], v[k], v[k + 1]):
            r, c = int(round(row1 - (py + 8) * scale)), int(round(col0 + (px + 8) * scale))
            rgb = decoded[r - 1:r + 2, c - 1:c + 2].reshape(-1, 3).mean(0)  # the disk's centre
            back = lut_values[np.argmin(np.sum((lut - rgb) ** 2, -1))]
            errors.append(abs(back - value) / (norm.vmax - norm.vmin))
            other.append(abs(back - later) / (norm.vmax - norm.vmin))
        # H.264 moves colours by a few levels: within 4 steps of the 256-step map (1.5 seen)
        assert max(errors) < 4 / 255, errors
        assert max(other) > 0.15  # the next frame's values do not match: the check can fail


def test_a_broken_frame_or_an_unwritable_output_leaves_no_file(tmp_path):
    t, positions, values = scene(3)
    good = list(movies.frames_of(t, positions, values, np.arange(3), 0.8))
    with pytest.raises(ValueError, match=r"frame 1 is not an \(H, W, 3\) uint8 image"):
        movies.write_mp4([good[0], good[1].astype(float), good[2]], tmp_path / "m.mp4", fps=4)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputWriteError, match=r"could not write .*file/m\.mp4: .*"):
        movies.write_mp4(good, tmp_path / "file" / "m.mp4", fps=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_flow_lines_follow_the_probability_flow_of_the_exact_linear_score():
    import jax.numpy as jnp
    from scipy.integrate import solve_ivp

    from activeflow.numerics.flow import flow_lines, velocity
    from activeflow.physics.linear import exact
    from activeflow.physics.systems import Linear

    system = Linear(mu=1.0, v0=1.0, gamma=0.5, eps=0.2, trap=1.0, spring=0.5, n_particles=2, dim=2)
    score = exact(system).score_fn()
    rng = np.random.default_rng(0)
    x0, g0 = jnp.asarray(rng.normal(size=(3, 2, 2))), jnp.asarray(rng.normal(size=(3, 2, 2)))
    xs, gs = flow_lines(score, system, x0, g0, 0.01, 10, 21)  # frames 0.1 apart up to t = 2
    assert xs.shape == (21, 3, 2, 2) and np.array_equal(xs[0], x0)

    def rhs(t, y):
        x, g = jnp.asarray(y[:4].reshape(2, 2)), jnp.asarray(y[4:].reshape(2, 2))
        v_x, v_g = velocity(system, x, g, *score(x, g))
        return np.concatenate([np.ravel(v_x), np.ravel(v_g)])

    sol = solve_ivp(rhs, (0, 2.0), np.concatenate([np.ravel(x0[1]), np.ravel(g0[1])]), rtol=1e-10, atol=1e-12,
                    t_eval=[1.0, 2.0])
    for frame, column in ((10, 0), (20, 1)):
        np.testing.assert_allclose(np.ravel(xs[frame, 1]), sol.y[:4, column], atol=1e-9)  # 1e-11 seen
        np.testing.assert_allclose(np.ravel(gs[frame, 1]), sol.y[4:, column], atol=1e-9)
    assert np.abs(xs[20] - xs[0]).max() > 0.1  # the points moved
