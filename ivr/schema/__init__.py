"""The JSON Schema of flow files (``flow.schema.json``), shipped with the package."""
