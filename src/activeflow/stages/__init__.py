"""One module per Snakemake rule, named as the rule, each holding only its `run()`: read the inputs,
call the library, write the outputs. The rule scripts in workflow/scripts/ call these."""
