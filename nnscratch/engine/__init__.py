"""How a built model runs: the execution plan, data parallelism over threads (and over processes and
hosts with MPI: :mod:`.distributed`), inference in pieces and memory tuning. A layer author never needs
anything here."""
