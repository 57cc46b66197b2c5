# One rule per figure; each draws from NetCDF files through activeflow.figures.

_FIGURE_NAMES = FIGURES + ["accuracy-epr"]
_unknown = sorted(set(config["figures"].get("dpi_override", {})) - set(_FIGURE_NAMES))
if _unknown:
    raise ValueError(
        f"figures.dpi_override names unknown figures {_unknown}; allowed: {_FIGURE_NAMES}"
    )


rule figure_fig02:
    input:
        map=ring_file("epr_map.nc"),
        trajectories=ring_file("trajectories.nc"),
    output:
        report(
            figure_paths("fig02-ring-flow"),
            caption="../report/fig02.rst",
            category="Two particles on a ring",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig02-ring-flow.log",
    benchmark:
        "logs/figures/fig02-ring-flow.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig02-ring-flow",
        options=figure_options("fig02-ring-flow"),
    script:
        "../scripts/figure.py"


rule figure_fig03:
    input:
        map=ring_file("epr_map.nc"),
    output:
        report(
            figure_paths("fig03-ring-system-epr"),
            caption="../report/fig03.rst",
            category="Two particles on a ring",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig03-ring-system-epr.log",
    benchmark:
        "logs/figures/fig03-ring-system-epr.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig03-ring-system-epr",
        options=figure_options("fig03-ring-system-epr"),
    script:
        "../scripts/figure.py"


rule figure_fig12:
    output:
        report(
            figure_paths("fig12-force-smoothing"),
            caption="../report/fig12.rst",
            category="Two particles on a ring",
            subcategory="Appendix F.2",
        ),
    log:
        "logs/figures/fig12-force-smoothing.log",
    benchmark:
        "logs/figures/fig12-force-smoothing.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig12-force-smoothing",
        options=lambda wildcards: figure_options(
            "fig12-force-smoothing",
            **{
                k: EXPERIMENTS[config["figures"]["ring_experiment"]]["parameters"][k]
                for k in ("a", "k", "beta")
            },
        ),
    script:
        "../scripts/figure.py"


rule figure_fig13:
    input:
        map=ring_file("epr_map.nc"),
        epr=ring_file("epr.nc"),
    output:
        report(
            figure_paths("fig13-ring-decomposition"),
            caption="../report/fig13.rst",
            category="Two particles on a ring",
            subcategory="Appendix F.2",
        ),
    log:
        "logs/figures/fig13-ring-decomposition.log",
    benchmark:
        "logs/figures/fig13-ring-decomposition.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig13-ring-decomposition",
        options=figure_options("fig13-ring-decomposition"),
    script:
        "../scripts/figure.py"


rule figure_fig14:
    input:
        map=ring_file("epr_map.nc"),
    output:
        report(
            figure_paths("fig14-ring-pointwise"),
            caption="../report/fig14.rst",
            category="Two particles on a ring",
            subcategory="Appendix F.2",
        ),
    log:
        "logs/figures/fig14-ring-pointwise.log",
    benchmark:
        "logs/figures/fig14-ring-pointwise.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig14-ring-pointwise",
        options=figure_options("fig14-ring-pointwise"),
    script:
        "../scripts/figure.py"


rule figure_fig15:
    input:
        diagnostics=ring_file("diagnostics.nc"),
    output:
        report(
            figure_paths("fig15-ring-diagnostics"),
            caption="../report/fig15.rst",
            category="Two particles on a ring",
            subcategory="Appendix F.2",
        ),
    log:
        "logs/figures/fig15-ring-diagnostics.log",
    benchmark:
        "logs/figures/fig15-ring-diagnostics.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig15-ring-diagnostics",
        options=figure_options("fig15-ring-diagnostics"),
    script:
        "../scripts/figure.py"
