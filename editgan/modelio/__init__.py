"""Model files: config.json, the one checkpoint reader and writer, the Hub, converters of foreign formats, editing
vectors and model cards. Depends on the networks only, never on the engine or the app."""
