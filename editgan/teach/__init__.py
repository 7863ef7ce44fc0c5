"""Teaching a generator a segmentation branch: training the pixel classifiers from labelled samples (no UI here)."""
