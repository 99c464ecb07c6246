"""One router per area; `ROUTERS` is what the app includes under /v1."""

from om_core.api.routers import (
    admin,
    availability,
    catalog,
    customers,
    fulfilment,
    health,
    locations,
    orders,
    purchasing,
    recommendations,
    returns,
    stock,
    transfer,
)

# Orders first after the health check: each request is matched against the routers in this order, and
# placing orders is the busiest route (the paths do not overlap, so the order changes nothing else).
ROUTERS = [health.router, orders.router, catalog.router, locations.router, customers.router, availability.router, fulfilment.router,
           returns.router, purchasing.router, stock.router, transfer.router,
           recommendations.router, admin.router]
