"""The mobile supernet: single paths are the space's networks, derivation gives valid genotypes, and the expected
latency is the latency table's prediction for one-hot choices with the gradient the table implies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.costs.lookup import LatencyTable, network_blocks
from archsearch.errors import BuildError
from archsearch.oneshot import build_supernet
from archsearch.oneshot.block_supernets import MOBILE_OPS as OPS
from archsearch.oneshot.block_supernets import SKIP, MobileSupernet
from archsearch.spaces import get_space

BUILD = {"width": 0.125, "head": 16}


def _net(seed: int = 0) -> MobileSupernet:
    net = build_supernet("mobile", 1, 4, input_size=12, seed=seed, **BUILD)
    assert isinstance(net, MobileSupernet)
    return net


def _table(net: MobileSupernet, seed: int = 0) -> LatencyTable:
    """A made-up table with an entry for every block any network of the space has at this build."""
    space, rng, entries = net.space, np.random.default_rng(seed), {}
    for g in [*space.block_cover(), *(space.sample(rng) for _ in range(20))]:
        for key, _, _ in network_blocks(space, g, net.input_shape, net.num_classes, net.build):
            entries.setdefault(key, float(rng.uniform(0.05, 0.5)))
    return LatencyTable("mobile", "torch", 1, 1, net.input_shape, net.num_classes, dict(net.build), 0.02, entries,
                        scale=1.1)  # fmt: skip


def _one_hot(net: MobileSupernet, genotype: object) -> torch.Tensor:
    choice = net.single_path(genotype)["layer"].choice
    assert choice is not None
    return torch.nn.functional.one_hot(torch.tensor(list(choice)), len(OPS)).float()


def test_the_expected_latency_of_a_one_hot_choice_is_the_tables_prediction() -> None:
    net = _net()
    table = _table(net)
    rng = np.random.default_rng(1)
    for _ in range(10):
        g = net.space.sample(rng)
        expected = float(net.expected_latency(table, _one_hot(net, g)))
        assert expected == pytest.approx(table.predict(g, net.space), rel=1e-5)


def test_the_gradient_of_the_expected_latency_has_the_sign_the_table_implies() -> None:
    net = _net()
    table = _table(net)
    with torch.no_grad():
        net.alphas["layer"].normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    net.expected_latency(table).backward()
    grad = net.alphas["layer"].grad
    assert grad is not None
    _, per_choice = net.latency_terms(table)
    p = torch.softmax(net.arch_logits()["layer"].detach(), dim=-1)
    mean = (p * per_choice).sum(-1, keepdim=True)
    allowed = p > 0
    # d E / d alpha_k = scale * p_k * (c_k - E_slot[c]): a costlier choice than the slot's mean is pushed down
    assert torch.equal(torch.sign(grad[allowed]), torch.sign((per_choice - mean)[allowed]))
    assert torch.all(grad[~allowed] == 0)


def test_a_table_for_another_build_is_refused_naming_it() -> None:
    net = _net()
    table = _table(net)
    table.build = {"width": 0.25, "head": 16}
    with pytest.raises(Exception, match="build options"):
        net.expected_latency(table)


def test_a_table_that_left_a_build_option_at_its_default_fits_a_supernet_that_gave_it() -> None:
    net = build_supernet("mobile", 1, 10, input_size=12, width=0.125)  # records head 1280, the space's default
    table = _table(net)
    table.build = {"width": 0.125}  # `latency-table --width 0.125`: the head left out
    assert float(net.expected_latency(table).detach()) > 0
    table.build = {"width": 0.125, "head": 640}
    with pytest.raises(Exception, match="build options"):
        net.expected_latency(table)


def _randomise(net: torch.nn.Module) -> None:
    """Every weight and batch-norm statistic random (a fresh block with a shortcut is the identity)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in [*net.named_parameters(), *net.named_buffers()]:
            if t.is_floating_point() and "alpha" not in name and "mask" not in name:
                t.copy_(torch.rand(t.shape, generator=generator) * (1.0 if "running_var" in name else 0.6) + (
                    0.5 if "running_var" in name else -0.3))  # fmt: skip


@pytest.mark.parametrize("seed", [3, 4])
def test_a_single_path_is_the_spaces_network_with_the_supernets_weights(seed: int) -> None:
    net = _net()
    _randomise(net)
    net.eval()
    space = get_space("mobile")
    g = space.sample(np.random.default_rng(seed))
    assert any(la.se for stage in g.stages for la in stage) and any(len(st) < max(d) for st, (_, _, d) in
                                                                    zip(g.stages, space.stages))  # fmt: skip
    model = space.build(g, 1, 4, 12, **BUILD).eval()
    state = {f"stem.{k}": v for k, v in net.stem.state_dict().items()}
    state |= {f"features.0.{k}": v for k, v in net.fixed[0].state_dict().items()}
    state |= {f"head.{k}": v for k, v in net.head.state_dict().items()}
    choice = net.single_path(g)["layer"].choice
    assert choice is not None
    position = 1
    for e, k in enumerate(choice):
        if OPS[k] != SKIP:
            state |= {f"features.{position}.{n}": v for n, v in net.layers[e].block_state(k).items()}
            position += 1
    model.load_state_dict(state)
    x = torch.randn(3, 1, 12, 12)
    torch.testing.assert_close(net(x, net.single_path(g)), model(x))
    net.train(), model.train()  # batch statistics: the sliced norms normalise the same channels
    torch.testing.assert_close(net(x, net.single_path(g)), model(x))


def test_a_fresh_mobile_supernet_starts_every_path_as_the_same_function() -> None:
    """The last norm of a block with a shortcut starts at zero, so random paths agree where only such blocks differ
    (what lets a supernet of random paths train; see :mod:`archsearch.oneshot.shared_blocks`)."""
    net, space = _net().train(), get_space("mobile")  # batch statistics: a fresh network's output varies with x
    x = torch.randn(4, 1, 12, 12)
    a, b = space.sample(np.random.default_rng(1)), space.sample(np.random.default_rng(2))
    same_first = type(a)(tuple((sa[0], *sb[1:]) for sa, sb in zip(a.stages, b.stages)))  # a's first blocks, b's rest
    assert same_first != a
    out = net(x, net.single_path(a))
    torch.testing.assert_close(out, net(x, net.single_path(same_first)))
    assert not torch.allclose(out[0], out[1])
    with torch.no_grad():
        for slot in net.layers:
            torch.nn.init.ones_(slot.block.bn3.weight)
    assert not torch.allclose(net(x, net.single_path(a)), net(x, net.single_path(same_first)))


def test_derivation_never_skips_a_layer_a_stage_needs() -> None:
    net = _net()
    with torch.no_grad():
        net.alphas["layer"][:, OPS.index(SKIP)] = 10.0  # the identity strongest everywhere
    g = net.derive()
    assert [len(s) for s in g.stages] == [min(d) for _, _, d in net.space.stages]
    with torch.no_grad():
        net.alphas["layer"][:, OPS.index(SKIP)] = -10.0
    assert [len(s) for s in net.derive().stages] == [max(d) for _, _, d in net.space.stages]
    assert float(net.probabilities()["layer"][0, OPS.index(SKIP)]) == 0.0


def test_the_mobile_supernet_refuses_cell_options() -> None:
    with pytest.raises(BuildError, match="channels"):
        build_supernet("mobile", 1, 4, channels=16)
    with pytest.raises(BuildError, match="partial"):
        build_supernet("mobile", 1, 4, partial=4)
    with pytest.raises(BuildError, match="cells"):
        build_supernet("mobile", 1, 4, cells=3)


def test_the_multiplier_rises_over_the_target_and_falls_under_it_never_below_zero() -> None:
    from archsearch.oneshot.latency import LatencyTarget

    net = _net()
    table = _table(net)
    expected = float(net.expected_latency(table).detach())
    over = LatencyTarget(table, target_ms=expected / 2)
    seen = []
    for _ in range(3):
        over.penalty(net)
        over.update()
        seen.append(over.multiplier)
    assert seen[0] > 0 and seen[0] < seen[1] < seen[2]
    under = LatencyTarget(table, target_ms=expected * 2, multiplier=0.012)
    falling = []
    for _ in range(4):  # half the target: each step takes rate * 0.5 = 0.005 off
        under.penalty(net)
        under.update()
        falling.append(under.multiplier)
    assert falling[0] == pytest.approx(0.007) and falling[1] == pytest.approx(0.002)
    assert falling[2:] == [0.0, 0.0]  # never negative: a met target leaves accuracy alone


def test_a_resumed_method_continues_the_multiplier() -> None:
    from archsearch.oneshot import default_config
    from archsearch.oneshot.darts import Darts
    from archsearch.oneshot.latency import LatencyTarget

    net = _net()
    table = _table(net)
    method = Darts(net, default_config("darts", epochs=2), steps_per_epoch=1)
    method.latency = LatencyTarget(table, target_ms=0.1, multiplier=0.7)
    state = method.state_dict()
    again = Darts(_net(), default_config("darts", epochs=2), steps_per_epoch=1)
    again.latency = LatencyTarget(table, target_ms=0.1)
    again.load_state_dict(state)
    assert again.latency.multiplier == 0.7


def test_a_derivation_over_the_limit_takes_the_most_probable_network_within_it() -> None:
    from archsearch.oneshot.latency import derive_within

    net = _net()
    table = _table(net)
    with torch.no_grad():
        net.alphas["layer"].normal_(0, 1.0, generator=torch.Generator().manual_seed(2))
    plain = net.derive()
    limit = 0.8 * table.predict(plain, net.space)
    found, note = derive_within(net, table, limit)
    assert table.predict(found, net.space) <= limit and note is not None and "over the" in note
    same, none = derive_within(net, table, 2 * table.predict(plain, net.space))
    assert same == plain and none is None
    with pytest.raises(Exception, match="no network of the space"):
        derive_within(net, table, 1e-6)


def test_pcdarts_is_refused_on_the_mobile_supernet_naming_what_it_lacks(tmp_path) -> None:
    from archsearch.api.oneshot_search import oneshot
    from archsearch.oneshot import supports
    from archsearch.testing.oneshot_suite import tiny_data

    assert not supports("pcdarts", "mobile") and supports("gdas", "mobile") and supports("pcdarts", "nb201")
    with pytest.raises(BuildError, match="partial"):
        oneshot("pcdarts", "mobile", tiny_data(), tmp_path / "r", epochs=1, supernet_options=BUILD)


def test_a_search_under_a_generous_target_records_latency_per_epoch_and_meets_it(tiny_table: Path,
                                                                                tmp_path: Path) -> None:
    from archsearch.api.oneshot_search import oneshot

    result = oneshot("gdas", "mobile", "digits", tmp_path / "r", epochs=2, batch_size=16, supernet_options=BUILD,
                     subset=96, latency_table=tiny_table, latency_target_ms=1000.0, plots=False)  # fmt: skip
    for record in result.history:
        lat = record["latency"]
        assert lat["target_ms"] == 1000.0 and lat["expected_ms"] > 0 and lat["predicted_ms"] > 0
        assert lat["measured_ms"] > 0 and lat["multiplier"] == 0.0  # never over the target: no penalty
    assert result.measured_ms is not None and result.measured_ms <= 1000.0
    from archsearch.api import show
    from archsearch.cli.common import latency_text

    shown = show(tmp_path / "r").oneshot
    assert shown is not None and shown.latency is not None
    assert shown.latency["target_ms"] == 1000.0 and shown.latency["measured_ms"] == result.measured_ms
    assert "(met)" in latency_text(shown.latency)


def test_a_derived_network_measured_over_the_target_is_derived_again_under_a_lower_prediction(
    tiny_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archsearch.oneshot import latency as lat

    net = build_supernet("mobile", 1, 10, input_size=8, **BUILD)
    table = LatencyTable.load(tiny_table)
    with torch.no_grad():
        net.alphas["layer"].normal_(0, 1.0, generator=torch.Generator().manual_seed(4))
    target_ms = 1.2 * table.predict(net.derive(), net.space)
    measured = iter([2.0 * target_ms, 0.5 * target_ms])  # the first derivation measures over, the second under
    monkeypatch.setattr(lat, "measured_ms", lambda *_: next(measured))
    genotype, notes, ms = lat.derive_measured(net, lat.LatencyTarget(table, target_ms))
    assert ms == 0.5 * target_ms and any("derived again" in n for n in notes)
    assert table.predict(genotype, net.space) <= target_ms / 2 * 1.0001
    monkeypatch.setattr(lat, "measured_ms", lambda *_: 10 * target_ms)
    with pytest.raises(Exception, match="no derived network met"):
        lat.derive_measured(net, lat.LatencyTarget(table, target_ms))


def test_the_command_line_reaches_the_target_and_refuses_half_of_it(tiny_table: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from archsearch.cli import main

    rc = main(["oneshot", "--method", "gdas", "--space", "mobile", "--dataset", "digits", "--subset", "64",
               "--epochs", "1", "--batch-size", "16", "--width", "0.125", "--head", "16",
               "--latency-table", str(tiny_table), "--latency-target-ms", "1000", "--out", str(tmp_path / "r")])
    assert rc in (0, None)
    assert "latency: supernet expects" in capsys.readouterr().out
    rc = main(["oneshot", "--method", "gdas", "--space", "mobile", "--latency-target-ms", "1", "--out",
               str(tmp_path / "s")])  # fmt: skip
    assert rc == 2
    assert "latency_table" in capsys.readouterr().err


def test_the_macro_supernet_runs_each_genotype_as_its_network_and_predicts_its_table_latency() -> None:
    space = get_space("macro")
    net = build_supernet("macro", 1, 4, input_size=12, width=0.125).eval()
    rng = np.random.default_rng(5)
    entries: dict[str, float] = {}
    genotypes = [space.sample(rng) for _ in range(6)]
    for g in [*space.block_cover(), *genotypes]:
        for key, _, _ in network_blocks(space, g, (1, 12, 12), 4, {"width": 0.125}):
            entries.setdefault(key, float(rng.uniform(0.05, 0.5)))
    table = LatencyTable("macro", "eager", 1, 1, (1, 12, 12), 4, {"width": 0.125}, 0.03, entries, scale=0.9)
    for g in genotypes:
        choice = net.single_path(g)["layer"].choice
        assert choice is not None
        probs = torch.nn.functional.one_hot(torch.tensor(list(choice)), 3).float()
        assert float(net.expected_latency(table, probs)) == pytest.approx(table.predict(g, space), rel=1e-5)
        model = space.build(g, 1, 4, 12, width=0.125).eval()
        state = {f"stem.{k}": v for k, v in net.stem.state_dict().items()}
        state |= {f"head.{k}": v for k, v in net.head.state_dict().items()}
        for e, k in enumerate(choice):
            state |= {f"features.{e}.{n}": v for n, v in net.layers[e][k].state_dict().items()}
        model.load_state_dict(state)
        x = torch.randn(2, 1, 12, 12)
        torch.testing.assert_close(net(x, net.single_path(g)), model(x))
    with torch.no_grad():
        net.alphas["layer"][:, 2] = 5.0
    assert str(net.derive()) == "22222222"


def test_a_sliced_batch_norm_keeps_the_statistics_of_its_channels_only() -> None:
    """A choice of a shared slot updates the first entries of the statistics (the cumulative average the
    recalibration of inherited weights uses included) and leaves the wider choices' channels alone."""
    from archsearch.oneshot.shared_blocks import SlicedBatchNorm2d

    bn = SlicedBatchNorm2d(6)
    bn.reset_running_stats()
    bn.momentum = None  # as the supernet evaluator recalibrates
    batches = [torch.randn(4, 3, 5, 5) + shift for shift in (1.0, 3.0)]
    for x in batches:
        out = bn(x)
        torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    expected = torch.stack([x.mean((0, 2, 3)) for x in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean[:3], expected)
    torch.testing.assert_close(bn.running_mean[3:], torch.zeros(3))
    torch.testing.assert_close(bn.running_var[3:], torch.ones(3))
    bn.eval()
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(bn(x), (x - bn.running_mean[:3, None, None]) / torch.sqrt(
        bn.running_var[:3, None, None] + bn.eps))  # fmt: skip
