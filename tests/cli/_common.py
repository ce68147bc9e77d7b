"""Arguments shared by the command-line tests."""

FIT_PARAMS = ["--max-iter", "3", "--encoder-dim", "8", "--verbose", "0"]
COLS = ["--key-col", "Metadata_gene", "--batch-col", "Metadata_Plate", "--control-label",
        "control"]
