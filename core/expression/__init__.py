"""Expressions from audio and emotion: the emotion vocabulary and curves, the a2e GAN, smoothing."""
