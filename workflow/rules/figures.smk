# One rule per figure of activeflow.figures.table (its name, inputs, caption and category), drawn by
# activeflow.stages.figure.

_unknown = sorted(
    set(config["figures"].get("dpi_override", {})) - {f.name for f in enabled_figures()}
)
if _unknown:
    raise ValueError(
        f"figures.dpi_override names unknown figures {_unknown}; allowed: "
        f"{[f.name for f in enabled_figures()]}"
    )


for _fig in enabled_figures():

    rule:
        name:
            _fig.rule
        input:
            **figure_inputs(_fig),
        output:
            report(
                figure_paths(_fig.name),
                caption=f"../report/{_fig.caption}",
                category=_fig.category,
                subcategory=_fig.subcategory,
                labels=figure_label(_fig.name),
            ),
        log:
            f"logs/figures/{_fig.name}.log",
        benchmark:
            f"logs/figures/{_fig.name}.benchmark.tsv"
        conda:
            "../../envs/plotting.yaml"
        threads: config["threads"]["cpu"]
        params:
            name=_fig.name,
            options=figure_options(_fig.name, **figure_arguments(_fig)),
        script:
            "../scripts/figure.py"
