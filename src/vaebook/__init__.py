"""vaebook: the NumPy code of "VAEs from Scratch"."""

from .autoencoder import Autoencoder
from .checkpoint import load, save
from .config import steps
from .cvae import ConditionalVAE
from .data import DataMissingError, binarize, load_digits, load_mnist
from .flows import AmortizedFlowVAE, FlowDensity, FlowVAE, PlanarFlow
from .gradcheck import gradcheck, numerical_grad, rel_error
from .hvae import HierarchicalVAE
from .layers import Linear, ReLU, Sequential, Sigmoid, Tanh, mlp
from .losses import Reparameterize, bernoulli_nll, gaussian_nll, kl_normal, mse
from .m2 import M2, Classifier
from .models import Elbo
from .optim import SGD, Adam
from .train import History, fit
from .vae import VAE

__all__ = [
    "VAE",
    "Adam",
    "AmortizedFlowVAE",
    "Autoencoder",
    "Classifier",
    "ConditionalVAE",
    "DataMissingError",
    "Elbo",
    "FlowDensity",
    "FlowVAE",
    "HierarchicalVAE",
    "History",
    "Linear",
    "M2",
    "PlanarFlow",
    "ReLU",
    "Reparameterize",
    "SGD",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "bernoulli_nll",
    "binarize",
    "fit",
    "gaussian_nll",
    "gradcheck",
    "kl_normal",
    "load",
    "load_digits",
    "load_mnist",
    "mlp",
    "mse",
    "numerical_grad",
    "rel_error",
    "save",
    "steps",
]
__version__ = "0.1.0"
