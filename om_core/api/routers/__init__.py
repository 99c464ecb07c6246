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

ROUTERS = [health.router, catalog.router, locations.router, customers.router, availability.router, orders.router, fulfilment.router,
           returns.router, purchasing.router, stock.router, transfer.router,
           recommendations.router, admin.router]
