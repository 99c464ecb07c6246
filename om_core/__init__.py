"""StoreOM operational core: the system of record for catalog, stock, customers and orders.

Imports nothing else from this repository; everything else builds on it.
"""

__version__ = "0.1.0"
