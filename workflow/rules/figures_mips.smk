# Figures of motility-induced phase separation (§7, App. F.10), from the fields of results/mips/.


rule figure_fig08:
    input:
        fields=mips_figure_inputs("fig08-mips-epr"),
    output:
        report(
            figure_paths("fig08-mips-epr"),
            caption="../report/fig08.rst",
            category="Motility-induced phase separation",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig08-mips-epr.log",
    benchmark:
        "logs/figures/fig08-mips-epr.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig08-mips-epr",
        options=figure_options(
            "fig08-mips-epr", **mips_figure_arguments("fig08-mips-epr")
        ),
    script:
        "../scripts/figure.py"


rule figure_fig09:
    input:
        fields=mips_figure_inputs("fig09-mips-transfer-size"),
    output:
        report(
            figure_paths("fig09-mips-transfer-size"),
            caption="../report/fig09.rst",
            category="Motility-induced phase separation",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig09-mips-transfer-size.log",
    benchmark:
        "logs/figures/fig09-mips-transfer-size.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig09-mips-transfer-size",
        options=figure_options(
            "fig09-mips-transfer-size",
            **mips_figure_arguments("fig09-mips-transfer-size"),
        ),
    script:
        "../scripts/figure.py"


rule figure_fig10:
    input:
        fields=mips_figure_inputs("fig10-mips-flow-arrows"),
    output:
        report(
            figure_paths("fig10-mips-flow-arrows"),
            caption="../report/fig10.rst",
            category="Motility-induced phase separation",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig10-mips-flow-arrows.log",
    benchmark:
        "logs/figures/fig10-mips-flow-arrows.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig10-mips-flow-arrows",
        options=figure_options(
            "fig10-mips-flow-arrows", **mips_figure_arguments("fig10-mips-flow-arrows")
        ),
    script:
        "../scripts/figure.py"


rule figure_fig11:
    input:
        fields=mips_figure_inputs("fig11-mips-packing-fraction"),
    output:
        report(
            figure_paths("fig11-mips-packing-fraction"),
            caption="../report/fig11.rst",
            category="Motility-induced phase separation",
            subcategory="Main text",
        ),
    log:
        "logs/figures/fig11-mips-packing-fraction.log",
    benchmark:
        "logs/figures/fig11-mips-packing-fraction.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig11-mips-packing-fraction",
        options=figure_options(
            "fig11-mips-packing-fraction",
            **mips_figure_arguments("fig11-mips-packing-fraction"),
        ),
    script:
        "../scripts/figure.py"


rule figure_fig19:
    input:
        fields=mips_figure_inputs("fig19-mips-packing-fraction-si1"),
    output:
        report(
            figure_paths("fig19-mips-packing-fraction-si1"),
            caption="../report/fig19.rst",
            category="Motility-induced phase separation",
            subcategory="Appendix F.10",
        ),
    log:
        "logs/figures/fig19-mips-packing-fraction-si1.log",
    benchmark:
        "logs/figures/fig19-mips-packing-fraction-si1.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig19-mips-packing-fraction-si1",
        options=figure_options(
            "fig19-mips-packing-fraction-si1",
            **mips_figure_arguments("fig19-mips-packing-fraction-si1"),
        ),
    script:
        "../scripts/figure.py"


rule figure_fig20:
    input:
        fields=mips_figure_inputs("fig20-mips-packing-fraction-si2"),
    output:
        report(
            figure_paths("fig20-mips-packing-fraction-si2"),
            caption="../report/fig20.rst",
            category="Motility-induced phase separation",
            subcategory="Appendix F.10",
        ),
    log:
        "logs/figures/fig20-mips-packing-fraction-si2.log",
    benchmark:
        "logs/figures/fig20-mips-packing-fraction-si2.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig20-mips-packing-fraction-si2",
        options=figure_options(
            "fig20-mips-packing-fraction-si2",
            **mips_figure_arguments("fig20-mips-packing-fraction-si2"),
        ),
    script:
        "../scripts/figure.py"


rule figure_fig21:
    input:
        fields=mips_figure_inputs("fig21-mips-packing-fraction-si3"),
    output:
        report(
            figure_paths("fig21-mips-packing-fraction-si3"),
            caption="../report/fig21.rst",
            category="Motility-induced phase separation",
            subcategory="Appendix F.10",
        ),
    log:
        "logs/figures/fig21-mips-packing-fraction-si3.log",
    benchmark:
        "logs/figures/fig21-mips-packing-fraction-si3.benchmark.tsv"
    conda:
        "../../envs/plotting.yaml"
    params:
        name="fig21-mips-packing-fraction-si3",
        options=figure_options(
            "fig21-mips-packing-fraction-si3",
            **mips_figure_arguments("fig21-mips-packing-fraction-si3"),
        ),
    script:
        "../scripts/figure.py"
