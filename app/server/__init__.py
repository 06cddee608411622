"""Running the application under uvicorn: prompt shutdown, connection limits, the collector."""
