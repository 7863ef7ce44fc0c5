"""Facts about model releases in the wild, as data: class names, palettes, presets, licenses."""
