"""Image modality (surface inspection): safe reading, annotations, features, synthetic textures.

Importing this package is cheap: Pillow, scipy and scikit-image are imported inside the functions.
"""
