"""Business services: one module per area. Each function takes the caller's session and
runs inside its transaction (see `Database.transaction`), so a failure writes nothing."""
