"""``nn``: a small multi-layer perceptron (scikit-learn ``MLPClassifier``).

Full fits run Adam for at most 200 epochs; incremental updates are one Adam
pass (``partial_fit``) over each new batch, continuing from the saved state.
"""

from __future__ import annotations

from sklearn.neural_network import MLPClassifier

from .tabular import PartialFitFamily


class NeuralNetworkFamily(PartialFitFamily):
    name = "nn"
    description = "multi-layer perceptron, one hidden layer of 64 ReLU units (scikit-learn)"
    incremental = "partial_fit: one Adam pass over each new batch"

    def make_classifier(self, seed: int) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1e-3, max_iter=200, random_state=seed
        )
