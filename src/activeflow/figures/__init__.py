"""The paper's figures, one drawing function each (modules ring, trap, mips, accuracy), listed with
their inputs, captions and report categories in `table` (light to import: the Snakefile reads it)."""
