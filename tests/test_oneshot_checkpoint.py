"""The one-shot checkpoint packs its many small tensors into one flat tensor per dtype, and reads back what it
packed, and what was written before packing, equal."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from archsearch.errors import ArchsearchError
from archsearch.oneshot.checkpoint import PACKED, load_checkpoint, pack, save_checkpoint, unpack
from archsearch.oneshot.supernets import NB201Supernet


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    return a == b


def test_pack_then_unpack_gives_every_tensor_and_value_back() -> None:
    net = NB201Supernet(C=4, cells=1, in_channels=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    optimizer.step()
    state = {
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": torch.Generator().manual_seed(3).get_state(),
        "odd": [torch.arange(12.0).view(3, 4).t(), torch.tensor(7), torch.tensor([True, False]), (1, "a", None)],
        "epoch": 2,
    }
    packed = pack(state)
    assert packed[PACKED] == 1 and {k.split("|")[0] for k in packed["flats"]} == {
        "torch.float32", "torch.int64", "torch.uint8", "torch.bool"
    }  # fmt: skip
    back = unpack(packed)
    assert _same(state, back)
    assert back["net"]._metadata == state["net"]._metadata  # the versions load_state_dict reads
    fresh = NB201Supernet(C=4, cells=1, in_channels=1)
    fresh.load_state_dict(back["net"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
    assert unpack(state) is state  # not packed: as it is


def test_a_checkpoint_is_written_packed_and_one_written_before_packing_still_loads(tmp_path: Path) -> None:
    state = {"method": {"net": OrderedDict(w=torch.ones(2, 3))}, "history": [{"epoch": 1}], "stopped": "finished"}
    save_checkpoint(state, tmp_path / "new.pt")
    assert torch.load(tmp_path / "new.pt", weights_only=True)[PACKED] == 1
    assert _same(load_checkpoint(tmp_path / "new.pt"), state)
    torch.save(state, tmp_path / "old.pt")
    assert _same(load_checkpoint(tmp_path / "old.pt"), state)
    broken = pack(state)
    broken["placed"] = []
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ArchsearchError, match="not a one-shot checkpoint archsearch wrote"):
        load_checkpoint(tmp_path / "broken.pt")
