# Figures of the 64 swimmers in a trap (§6, App. F.3): one column per v0 of figures.trap_experiment.


rule figure_fig05:
    input:
        epr=trap_files("epr.nc"),
        maps=trap_files("epr_map.nc"),
    output:
        report(
            figure_paths("fig05-trap-system-epr"),
            caption="../report/fig05.rst",
            category="Swimmers in a trap",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig05-trap-system-epr.log",
    benchmark:
        "logs/figures/fig05-trap-system-epr.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig05-trap-system-epr",
        options=figure_options("fig05-trap-system-epr", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"


rule figure_fig06:
    input:
        epr=trap_files("epr.nc"),
        maps=trap_files("epr_map.nc"),
    output:
        report(
            figure_paths("fig06-trap-total-epr"),
            caption="../report/fig06.rst",
            category="Swimmers in a trap",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig06-trap-total-epr.log",
    benchmark:
        "logs/figures/fig06-trap-total-epr.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig06-trap-total-epr",
        options=figure_options("fig06-trap-total-epr", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"


rule figure_fig07:
    input:
        attention=trap_files("attention.nc"),
    output:
        report(
            figure_paths("fig07-trap-attention"),
            caption="../report/fig07.rst",
            category="Swimmers in a trap",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig07-trap-attention.log",
    benchmark:
        "logs/figures/fig07-trap-attention.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig07-trap-attention",
        options=figure_options("fig07-trap-attention", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"


rule figure_fig16:
    input:
        epr=trap_files("epr.nc"),
        maps=trap_files("epr_map.nc"),
    output:
        report(
            figure_paths("fig16-trap-total-epr-parts"),
            caption="../report/fig16.rst",
            category="Swimmers in a trap",
            subcategory="Appendix F.3",
        ),
    log:
        "logs/figures/fig16-trap-total-epr-parts.log",
    benchmark:
        "logs/figures/fig16-trap-total-epr-parts.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig16-trap-total-epr-parts",
        options=figure_options("fig16-trap-total-epr-parts", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"


rule figure_fig17:
    input:
        epr=trap_files("epr.nc"),
        maps=trap_files("epr_map.nc"),
    output:
        report(
            figure_paths("fig17-trap-system-epr-parts"),
            caption="../report/fig17.rst",
            category="Swimmers in a trap",
            subcategory="Appendix F.3",
        ),
    log:
        "logs/figures/fig17-trap-system-epr-parts.log",
    benchmark:
        "logs/figures/fig17-trap-system-epr-parts.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig17-trap-system-epr-parts",
        options=figure_options("fig17-trap-system-epr-parts", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"


rule figure_fig18:
    input:
        diagnostics=trap_files("diagnostics.nc"),
    output:
        report(
            figure_paths("fig18-trap-diagnostics"),
            caption="../report/fig18.rst",
            category="Swimmers in a trap",
            subcategory="Appendix F.3",
        ),
    log:
        "logs/figures/fig18-trap-diagnostics.log",
    benchmark:
        "logs/figures/fig18-trap-diagnostics.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig18-trap-diagnostics",
        options=figure_options("fig18-trap-diagnostics", **trap_figure_arguments()),
    script:
        "../scripts/figure.py"
