"""MIPS figures (Figs. 8-11, 19-21) drawn from small synthetic `fields.nc` files: a dense disc-shaped
cluster in a dilute gas, with the EPR large on the cluster's rim."""

import importlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from activeflow.analysis.local_density import by_local_phi, local_structure
from activeflow.figures import mips
from activeflow.figures.table import BY_NAME, FIGURES
from activeflow.stages import figure

GAMMA, V0, A = 1e-4, 0.025, 1.0


def synthetic(n: int, phi: float, n_samples: int = 2, seed: int = 0) -> xr.Dataset:
    """`fields.nc` of N disks of radius A at packing fraction phi: about half in a hexagonally packed
    disc at the centre, the rest uniform outside it; v_g radial, large on the rim, outward inside it
    and inward outside it, zero deep in the disc."""
    rng = np.random.default_rng(seed)
    box = float(np.sqrt(n * np.pi * A**2 / phi))
    radius = min(np.sqrt(0.5 * n * 2 * np.sqrt(3) * A**2 / np.pi), 0.4 * box)
    k = np.arange(-int(radius), int(radius) + 1)
    i, j = np.meshgrid(k, k)
    lattice = 2 * A * np.stack([i + 0.5 * (j % 2), j * np.sqrt(3) / 2], -1).reshape(-1, 2)
    lattice = lattice[np.linalg.norm(lattice, axis=1) < radius][: n // 2]
    xs, gs = [], []
    for _ in range(n_samples):
        gas = rng.uniform(-box / 2, box / 2, (4 * n, 2))
        gas = gas[np.linalg.norm(gas, axis=1) > radius + A][: n - len(lattice)]
        xs.append(np.concatenate([lattice, gas]))
        gs.append(rng.normal(size=(n, 2)))
    x, g = np.stack(xs), np.stack(gs)
    r = np.linalg.norm(x, axis=-1, keepdims=True)
    rim = np.exp(-(((r - radius) / (3 * A)) ** 2))
    v_g = 0.05 * rim * np.tanh(radius - r) * x / np.maximum(r, 1e-9) + 1e-3 * rng.normal(size=x.shape)
    inside = (r[..., 0] < radius).astype(np.int8)
    return xr.Dataset(
        {
            "x": (("sample", "particle", "dim"), x),
            "g": (("sample", "particle", "dim"), g),
            "s_g": (("sample", "particle", "dim"), -v_g / GAMMA - g),
            "v_g": (("sample", "particle", "dim"), v_g),
            "v_g_sq": (("sample", "particle"), (v_g**2).sum(-1)),
            "div_g_v_g": (("sample", "particle"), 1e-3 * rim[..., 0] * np.tanh(r[..., 0] - radius)),
            "largest_cluster_fraction": (("sample",), inside.mean(-1)),
            "in_largest_cluster": (("sample", "particle"), inside),
            "local_phi": (("sample", "particle"), np.stack([local_structure(y, box, 4 * A, A)[0] for y in x])),
        },
        attrs=dict(box=box, phi=phi, n_particles=n, a=A, v0=V0, gamma=GAMMA, provenance="{}"),
    )


def panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def colour_bars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """`fields.nc` per system: the training system, three N at phi = 0.5, three phi at N = 300."""
    root = tmp_path_factory.mktemp("mips")
    systems = {"train": synthetic(400, 0.5)}
    systems |= {f"n{n}": synthetic(n, 0.5, seed=n) for n in (200, 400, 800)}
    systems |= {f"phi{p}": synthetic(300, p, seed=int(100 * p)) for p in (0.1, 0.5, 0.8)}
    paths = {}
    for name, ds in systems.items():
        paths[name] = str(root / f"{name}.nc")
        ds.to_netcdf(paths[name], engine="netcdf4")
    return paths


PACKING = ["fig11-mips-packing-fraction", "fig19-mips-packing-fraction-si1",
           "fig20-mips-packing-fraction-si2", "fig21-mips-packing-fraction-si3"]


def test_the_figure_table_names_real_functions_captions_and_unique_rules():
    for name in ["fig08-mips-epr", "fig09-mips-transfer-size", "fig10-mips-flow-arrows", *PACKING]:
        assert BY_NAME[name].inputs == (("fields", "fields"),) and BY_NAME[name].family == "mips"
    assert {BY_NAME[name].draw for name in PACKING} == {"mips.fig_mips_packing_fraction"}
    reports = Path(__file__).resolve().parents[1] / "workflow" / "report"
    for fig in FIGURES:
        module, function = fig.draw.split(".")
        assert callable(getattr(importlib.import_module(f"activeflow.figures.{module}"), function)), fig.draw
        assert (reports / fig.caption).exists(), fig.caption
    assert len({fig.rule for fig in FIGURES}) == len({fig.name for fig in FIGURES}) == len(FIGURES)


def draw(name, inputs, arguments, tmp_path, formats=("png",)):
    outputs = [str(tmp_path / f"{name}.{ext}") for ext in formats]
    figure.run(name, {"fields": inputs}, outputs, {"dpi": 60, "arguments": arguments})
    for path in outputs:
        with open(path, "rb") as f:
            assert len(f.read()) > 5000, path


def test_all_figures_are_written(files, tmp_path):
    draw("fig08-mips-epr", files["train"], {}, tmp_path, formats=("png", "pdf"))
    draw("fig10-mips-flow-arrows", [files["train"]], {"snapshot": 1}, tmp_path)
    draw("fig09-mips-transfer-size", [files[f"n{n}"] for n in (200, 400, 800)],
         {"n_particles": [200, 400, 800]}, tmp_path)
    for name in PACKING:
        draw(name, [files[f"phi{p}"] for p in (0.1, 0.5, 0.8)], {"phi": [0.1, 0.5, 0.8], "n_particles": 300}, tmp_path)


def test_fig08_panels_and_colour_bars():
    ds = synthetic(400, 0.5)
    fig = mips.fig08_mips_epr(ds)
    assert len(panels(fig)) == 5 and len(colour_bars(fig)) == 3  # (D) has a twin axis
    box = 400 * np.pi / 0.5
    for ax in panels(fig)[:3]:
        assert np.allclose(ax.get_xlim(), [-np.sqrt(box) / 2, np.sqrt(box) / 2])
    signed = panels(fig)[2].collections[0].norm
    assert signed.vcenter == 0 and signed.vmin == -signed.vmax
    # (D): the profile over both snapshots, in units of gamma^2 and gamma, bins of >= 20 particles
    table = by_local_phi(ds.local_phi.values, v_g_sq=ds.v_g_sq.values, div_g_v_g=ds.div_g_v_g.values)
    table = table[table["count"] >= mips.PROFILE_MIN_COUNT]
    assert 3 <= len(table) < 11
    for ax, field, scale in ((panels(fig)[3], "v_g_sq", GAMMA**2), (panels(fig)[4], "div_g_v_g", GAMMA)):
        np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), table[field].to_numpy() / scale)


def test_rows_share_one_colour_scale_and_boxes_are_rescaled():
    ns = [200, 400, 1600]
    fig = mips.fig09_mips_transfer_size([synthetic(n, 0.5, seed=n) for n in ns], ns)
    axes = np.array(panels(fig)).reshape(2, 3)
    assert len(colour_bars(fig)) == 2
    assert [ax.get_title() for ax in axes[0]] == [f"$N = {n}$" for n in ns]
    for row in axes:
        norms = {(ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) for ax in row}
        assert len(norms) == 1
    for ax in axes.ravel():
        assert ax.get_xlim() == (-0.5, 0.5) and ax.get_ylim() == (-0.5, 0.5)
    # outlines only for small N: at large N they would merge into black blobs
    assert axes[0, 0].collections[0].get_linewidths()[0] > 0
    assert axes[0, 2].collections[0].get_linewidths()[0] == 0


def test_packing_fraction_titles():
    phi = [0.05, 0.3, 0.6, 0.85]
    fig = mips.fig_mips_packing_fraction([synthetic(300, p) for p in phi], phi, 300)
    assert len(panels(fig)) == 8 and len(colour_bars(fig)) == 2
    assert [ax.get_title() for ax in panels(fig)[:4]] == [f"$\\phi = {p:g}$" for p in phi]
    assert "N = 300" in fig._suptitle.get_text()


def test_arrows_are_two_diameters_at_the_top_of_the_colour_scale():
    ds = synthetic(400, 0.5)
    fig = mips.fig10_mips_flow_arrows(ds)
    assert len(panels(fig)) == 2 and len(colour_bars(fig)) == 2
    for ax, var in zip(panels(fig), ["v_g", "g"], strict=True):
        quiver = ax.collections[-1]
        top = np.percentile(np.linalg.norm(ds[var].values[0], axis=-1), 99)
        assert quiver.scale_units == "xy"
        assert quiver.scale == pytest.approx(top / (mips.ARROW_DIAMETERS * 2 * A))


@pytest.mark.parametrize("call, message", [
    (lambda d: mips.fig_mips_packing_fraction([d[0.5], d[0.1]], [0.1, 0.5], 300),
     "file 0 has phi = 0.5, expected 0.1; file 1 has phi = 0.1, expected 0.5"),
    (lambda d: mips.fig_mips_packing_fraction([d[0.1], d[0.5]], [0.1, 0.5], 301),
     "n_particles in order: file 0 has n_particles = 300, expected 301"),
    (lambda d: mips.fig_mips_packing_fraction([d[0.5], d[0.1]], [0.5, 0.1], 300), "strictly increasing"),
    (lambda d: mips.fig_mips_packing_fraction([d[0.1]], [0.1, 0.5], 300), "1 fields files for 2 values of phi"),
    (lambda d: mips.fig09_mips_transfer_size([d[0.1], d[0.5]], [300, 300]), "strictly increasing"),
    (lambda d: mips.fig09_mips_transfer_size([d[0.1], d[0.5]], [300, 600]), "file 1 has n_particles = 300"),
    (lambda d: mips.fig08_mips_epr(d[0.5], snapshot=2), "snapshot 2 out of range; the file has 2 samples"),
    (lambda d: mips.fig08_mips_epr([d[0.1], d[0.5]]), "draws one system; got 2"),
    (lambda d: mips.fig08_mips_epr(d[0.5].drop_vars("in_largest_cluster")), "missing ['in_largest_cluster']"),
    (lambda d: mips.fig08_mips_epr(d[0.5].drop_vars("local_phi")), "missing ['local_phi']"),
    (lambda d: mips.fig10_mips_flow_arrows(d[0.5].assign(x=d[0.5].x + d[0.5].box / 2)), "fold them into the box"),
])
def test_wrong_inputs_are_named(call, message):
    data = {0.1: synthetic(300, 0.1), 0.5: synthetic(300, 0.5)}
    with pytest.raises(ValueError) as err:
        call(data)
    assert message in str(err.value)


def test_fig09_refuses_mixed_packing_fractions():
    with pytest.raises(ValueError, match="one packing fraction"):
        mips.fig09_mips_transfer_size([synthetic(200, 0.5), synthetic(400, 0.3)], [200, 400])
