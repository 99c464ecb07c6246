"""The retail simulator: a realistic retailer's history, recorded through the core's services.

    from om_core.simulator import SimulationConfig, simulate
    report = simulate(db, SimulationConfig(seed=7, scale=1.0))  # two years ending yesterday

`config` sizes the run, `world` generates the network, catalogue and customers, `demand` the expected
demand (pure numpy), `baskets` turns it into customers' orders, `run` lives through the days
(`storeom simulate` is om_core.cli_simulate).
"""

from om_core.simulator.config import SimulationConfig
from om_core.simulator.run import SimulationReport, simulate

__all__ = ["SimulationConfig", "SimulationReport", "simulate"]
