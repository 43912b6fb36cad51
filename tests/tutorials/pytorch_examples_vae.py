"""pytorch/examples vae/main.py: its VAE, Adam(lr=1e-3) and summed loss, run as the script runs on a machine
without an accelerator (the recipe `pytorch-vae` in examples/pytorch-vae).

The script as published (pytorch/examples, BSD-3-Clause), a function here, its command-line arguments
replaced by their defaults (`args.*` -> the value); every changed line is marked. Its images are not saved
(the draws that make them still are). What it prints is kept by epoch: the average training and test loss,
as printed (4 decimals).
"""

from torch.utils.data import Subset  # added


def main(seed=1, epochs=10, root="../data", train_limit=None):  # changed: a function of the arguments it reads
    figures = {}  # added: the printed figures, by epoch

    import torch
    torch.set_num_threads(1)  # added: one thread
    import torch.utils.data
    from torch import nn, optim
    from torch.nn import functional as F
    from torchvision import datasets, transforms

    # removed: the argument parser; its defaults are written where they are read
    use_accel = False  # changed: not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(seed)  # changed: args.seed

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    print(f"Using device: {device}")

    kwargs = {'num_workers': 1, 'pin_memory': True} if use_accel else {}
    train_set = datasets.MNIST(root, train=True, download=False,  # changed: '../data', download=True
                               transform=transforms.ToTensor())
    if train_limit is not None:  # added: the first train_limit training samples only
        train_set = Subset(train_set, range(train_limit))  # added
    train_loader = torch.utils.data.DataLoader(
        train_set,  # changed: the dataset made above
        batch_size=128, shuffle=True, **kwargs)  # changed: args.batch_size
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST(root, train=False, transform=transforms.ToTensor()),  # changed: '../data'
        batch_size=128, shuffle=False, **kwargs)  # changed: args.batch_size

    class VAE(nn.Module):
        def __init__(self):
            super(VAE, self).__init__()

            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5*logvar)
            eps = torch.randn_like(std)
            return mu + eps*std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    # Reconstruction + KL divergence losses summed over all elements and batch
    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')

        # see Appendix B from VAE paper:
        # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
        # https://arxiv.org/abs/1312.6114
        # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

        return BCE + KLD

    def train(epoch):
        model.train()
        train_loss = 0
        for batch_idx, (data, _) in enumerate(train_loader):
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
            if batch_idx % 10 == 0:  # changed: args.log_interval
                print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                    epoch, batch_idx * len(data), len(train_loader.dataset),
                    100. * batch_idx / len(train_loader),
                    loss.item() / len(data)))

        print('====> Epoch: {} Average loss: {:.4f}'.format(
              epoch, train_loss / len(train_loader.dataset)))
        figures[epoch] = {"train_loss": '{:.4f}'.format(train_loss / len(train_loader.dataset))}  # added

    def test(epoch):
        model.eval()
        test_loss = 0
        with torch.no_grad():
            for i, (data, _) in enumerate(test_loader):
                data = data.to(device)
                recon_batch, mu, logvar = model(data)
                test_loss += loss_function(recon_batch, data, mu, logvar).item()
                # removed: the first batch's reconstructions saved as results/reconstruction_<epoch>.png

        test_loss /= len(test_loader.dataset)
        print('====> Test set loss: {:.4f}'.format(test_loss))
        figures[epoch]["test_loss"] = '{:.4f}'.format(test_loss)  # added

    for epoch in range(1, epochs + 1):  # changed: args.epochs
        train(epoch)
        test(epoch)
        with torch.no_grad():
            sample = torch.randn(64, 20).to(device)
            sample = model.decode(sample).cpu()
            # removed: save_image(sample.view(64, 1, 28, 28), 'results/sample_' + str(epoch) + '.png')
    return figures, model  # added
