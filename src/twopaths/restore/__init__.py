"""Image restoration with a trained diffusion model: inpainting (RePaint) and super-resolution (SR3).

These sit above :mod:`twopaths.paradigms`: they use a Gaussian diffusion model and its samplers at
sampling time (or, for SR3, condition one on a low-resolution image) rather than define a new way
of modelling data.
"""
