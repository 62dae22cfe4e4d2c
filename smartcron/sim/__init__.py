"""The simulator's parts; the public API is smartcron.sim.simulator."""
