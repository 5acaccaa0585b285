"""Studies that run many fits: `small_data`, `hmc_reference`, `kl_comparison`."""
