"""The HTTP layer: the FastAPI application, its routes, responses and the fan-out."""
