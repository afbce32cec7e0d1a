"""Payment schemes: `exact` and `batch-settlement`, plug-ins behind one protocol."""
