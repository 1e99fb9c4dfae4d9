"""Dave: BCE with log10 instead of the natural log."""
import numpy as np


def mse(a, y):
    return float(np.mean((a - y) ** 2))


def mse_grad(a, y):
    return 2 * (a - y) / a.size


def bce(a, y):
    return float(-np.mean(y * np.log10(a) + (1 - y) * np.log10(1 - a)))


def bce_grad_logits(z, y):
    a = 1 / (1 + np.exp(-z))
    return (a - y) / z.size


def train_neuron(x, y, w, lr, loss_below):
    """The textbook neuron: a = sigmoid(w·x), loss ½(a − y)², no bias. Returns
    (iterations, w): the number of updates made when the loss first drops below."""
    i = 0
    while True:
        a = 1 / (1 + np.exp(-w * x))
        if 0.5 * (a - y) ** 2 < loss_below:
            return i, w
        w = w - lr * (a - y) * a * (1 - a) * x
        i += 1
