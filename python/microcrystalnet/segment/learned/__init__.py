"""The learned crystal segmenter: a small U-Net predicts background / crystal interior / crystal
boundary at a fixed working scale, and a seeded watershed turns that into crystals.

Modules: :mod:`.network` (the architecture), :mod:`.model_file` (a trained segmenter on disk:
weights, working scale, thresholds, what it was trained on; the default one ships with the
package), :mod:`.inference` (probabilities and instances of an image), :mod:`.training`
(training from synthetic scenes and outlined real images, fine-tuning).
"""
