"""Recurrent agents with a trainable per-neuron time constant tau."""
