import torch

from archsearch.data import Augment, BatchLoader, Split


def _label_images(n: int = 64, size: int = 8) -> Split:
    """Image i is filled with the value of its label + 1, so any mix-up of images and labels shows."""
    y = torch.arange(n) % 10
    x = (y + 1).float().view(n, 1, 1, 1).expand(n, 2, size, size).clone()
    return Split(x, y)


def test_every_example_once_per_epoch_and_seeded_order() -> None:
    split = _label_images()
    mean, std = torch.zeros(2), torch.ones(2)
    loader = BatchLoader(split, 10, mean, std, shuffle=True, seed=3)
    epoch0 = torch.cat([y for _, y in loader])
    epoch1 = torch.cat([y for _, y in loader])
    assert len(epoch0) == 64 and sorted(epoch0.tolist()) == sorted(split.y.tolist())
    again = BatchLoader(split, 10, mean, std, shuffle=True, seed=3)
    assert torch.equal(torch.cat([y for _, y in again]), epoch0)
    again.set_epoch(0)
    assert torch.equal(torch.cat([y for _, y in again]), epoch0)
    x_all = torch.cat([x for x, _ in BatchLoader(split, 10, mean, std, shuffle=True, seed=3)])
    assert not torch.equal(epoch0, epoch1) and len(x_all) == 64
    assert len(BatchLoader(split, 10, mean, std, drop_last=True)) == 6


def test_augmentation_keeps_shapes_and_label_alignment() -> None:
    split = _label_images()
    aug = Augment(crop_padding=2, flip=True, cutout=3)
    loader = BatchLoader(split, 16, torch.zeros(2), torch.ones(2), shuffle=True, seed=0, augment=aug)
    for x, y in loader:
        assert x.shape == (16, 2, 8, 8)
        for img, label in zip(x, y):
            values = set(img.unique().tolist()) - {0.0}
            assert values == {float(label + 1)}  # only padding / cutout zeros besides the image's own value
        zero_fraction = (x == 0).float().mean().item()
        assert 0.0 < zero_fraction < 0.6


def test_crop_shifts_and_flip_mirrors() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    flipped = Augment(flip=True)(x, gen)
    is_flipped = [torch.equal(a, x[0].flip(2)) for a in flipped]
    assert all(f or torch.equal(a, x[0]) for f, a in zip(is_flipped, flipped)) and 50 < sum(is_flipped) < 150
    cropped = Augment(crop_padding=1)(x, gen)
    shifts = {tuple((c == 5.0).nonzero()[0].tolist()) for c in cropped if (c == 5.0).any()}
    assert len(shifts) == 9  # every offset of a 1-pixel padding shows up


def test_cutout_zeros_a_square_of_the_given_size() -> None:
    x = torch.ones(50, 1, 16, 16)
    out = Augment(cutout=4)(x, torch.Generator().manual_seed(1))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4x4 square, clipped at the border
