"""How a built model runs: the execution plan, data parallelism over threads, inference in pieces and
memory tuning. A layer author never needs anything here."""
