"""`modelyard bench`: modelyard against the servers users would pick instead, on one machine, in one run."""
