"""Training machinery: KL schedules and callbacks, resumable fit, distribution strategies."""

#: names of the distribution strategies of `tfp_dgbn.fit.distribute.make_strategy`
STRATEGIES = ("default", "mirrored", "multiworker")
