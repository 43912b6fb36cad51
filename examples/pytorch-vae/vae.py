"""pytorch/examples' vae/main.py as steps of a recipe's own: the model returns a tuple, the loss is taken over
the inputs, summed over the batch.

The VAE's layers are created in the script's order (fc1, fc21, fc22, fc3, fc4), so a seed gives the script's
initial weights. Its forward pass samples (torch.randn_like) in evaluation too, as the script's does, and
after each epoch the script decodes 64 random codes into an image of samples: `sample` makes that draw, so
the next epoch shuffles from where the script's does."""

import torch
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self, pixels: int = 784, hidden: int = 400, codes: int = 20):
        super().__init__()
        self.pixels, self.codes = pixels, codes
        self.fc1 = nn.Linear(pixels, hidden)
        self.fc21 = nn.Linear(hidden, codes)  # the code's mean
        self.fc22 = nn.Linear(hidden, codes)  # its log-variance
        self.fc3 = nn.Linear(codes, hidden)
        self.fc4 = nn.Linear(hidden, pixels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x.view(-1, self.pixels))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # the reparameterisation: a draw per code
        return self.decode(z), mu, logvar


def training_step(model: VAE, batch) -> dict[str, torch.Tensor]:
    """The negative evidence lower bound of the batch, summed: the images' binary cross-entropy against their
    reconstructions, and the codes' KL divergence from the unit normal (Kingma and Welling, Appendix B). The
    loss is their sum, as the script's; each part is recorded too ([metrics.bce], [metrics.kld])."""
    x, _ = batch  # the digit labels go unused
    recon, mu, logvar = model(x)
    bce = F.binary_cross_entropy(recon, x.view(-1, model.pixels), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return {"loss": bce + kld, "bce": bce, "kld": kld}


def sample(model: VAE) -> None:
    """The script's end of each epoch: 64 codes from the unit normal, decoded (it saves them as an image)."""
    with torch.no_grad():
        model.decode(torch.randn(64, model.codes).to(next(model.parameters()).device))
