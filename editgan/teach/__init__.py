"""Teaching a generator a segmentation branch from a few annotated samples (the engine side; no UI here).

- ``templates``: ready-made class lists (face, car, cat, bird) as data.
- ``annotations``: :class:`AnnotationSet` in memory and its folder format (classes.json + label-map PNGs + w+).
- ``training``: the pixel classifiers trained on features read at sampled pixels only.
- ``branch``: :func:`teach_branch` (a new model with the taught branch, plus a report with the held-out agreement)
  and :func:`save_taught_model`.

The canvas helpers a Teach tab also needs live in the engine: ``engine.fill.fill_region`` (the fill tool) and
``EditGANModel.uncertainty`` (where the ensemble disagrees).
"""
