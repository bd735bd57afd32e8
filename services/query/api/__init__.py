"""The query API's HTTP layer: shared dependencies, refusals and the routes per resource."""
