"""Segmentation branch: the factorized computation equals DatasetGAN's naive one, and training learns labels."""
from __future__ import annotations

import pytest
import torch

from editgan.networks.pixel_taps import InterpolationMatrix
from editgan.networks.segmenter import Segmenter, SegmenterConfig
from editgan.networks.stylegan2 import Generator
from editgan.teach.training import SegmenterTrainingOptions, train_segmenter


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(32, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16, 32: 16}).eval()


def randomize_batchnorm(segmenter: Segmenter) -> None:
    """Give BN layers non-trivial running statistics, as a trained checkpoint has."""
    for m in segmenter.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()


def random_segmenter_and_features(mode: str, n_classes: int) -> tuple[Segmenter, list[torch.Tensor]]:
    g = tiny_generator()
    config = SegmenterConfig(tuple(g.feature_channels()), n_classes=n_classes, n_members=3, upsample_mode=mode)
    seg = Segmenter(config).eval()
    randomize_batchnorm(seg)
    _, feats = g.synthesis(g.to_wplus(g.mapping(torch.randn(2, 32))), return_features=True)
    return seg, feats


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@torch.no_grad()
def test_factorized_logits_equal_naive(mode):
    seg, feats = random_segmenter_and_features(mode, n_classes=5)
    fast, slow = seg(feats), seg.forward_naive(feats)
    assert fast.shape == (2, 5, 32, 32)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    assert torch.equal(seg.predict(feats), fast.argmax(1))


def test_official_layout_keys_and_hidden_widths():
    seg = Segmenter(SegmenterConfig((512, 512), n_classes=32, n_members=1))
    keys = {k: tuple(v.shape) for k, v in seg.members[0].state_dict().items()}
    assert keys["layers.0.weight"] == (256, 1024) and keys["layers.3.weight"] == (128, 256)
    assert keys["layers.6.weight"] == (32, 128) and "layers.5.running_var" in keys
    small = Segmenter(SegmenterConfig((8,), n_classes=10, n_members=1))
    assert small.members[0].layers[6].weight.shape == (10, 32)  # DatasetGAN's narrow branch below 32 classes


def test_wrong_feature_channels_are_reported():
    seg = Segmenter(SegmenterConfig((4, 4), n_classes=3, n_members=1)).eval()
    with pytest.raises(ValueError, match="channels"):
        seg([torch.zeros(1, 4, 2, 2), torch.zeros(1, 5, 4, 4)])


def test_training_on_few_samples_learns_a_labelling():
    """Labels that the features determine (a random 'teacher' classifier) are learned from 4 samples."""
    g = tiny_generator(1)
    torch.manual_seed(3)
    config = SegmenterConfig(tuple(g.feature_channels()), n_classes=3, n_members=2, hidden=(32, 16))
    teacher = Segmenter(SegmenterConfig(config.feature_channels, 1, n_members=1, hidden=(8, 8))).eval()
    with torch.no_grad():
        wplus = g.to_wplus(g.mapping(torch.randn(8, 32)))
        _, feats = g.synthesis(wplus, return_features=True)
        score = teacher(feats)[:, 0]  # thresholding one teacher logit at its terciles gives balanced classes
        labels = (score > score.quantile(1 / 3)).long() + (score > score.quantile(2 / 3)).long()
    seg = train_segmenter(g, wplus[:4], labels[:4], config,
                          SegmenterTrainingOptions(epochs=10, batch_size=256, lr=3e-3, class_balance=0))
    with torch.no_grad():
        predicted = seg.predict(feats)
    train_accuracy = (predicted[:4] == labels[:4]).float().mean()
    held_out_accuracy = (predicted[4:] == labels[4:]).float().mean()
    chance = torch.bincount(labels[4:].reshape(-1)).max() / labels[4:].numel()
    assert train_accuracy > 0.9
    assert held_out_accuracy > float(chance) + 0.15, (held_out_accuracy, chance)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@torch.no_grad()
def test_logits_at_selected_pixels_equal_the_full_map(mode):
    seg, feats = random_segmenter_and_features(mode, n_classes=4)
    full = seg(feats, chunk=100)  # bands of 3 rows: the last one shorter
    torch.testing.assert_close(full, seg.forward_naive(feats), atol=1e-4, rtol=1e-4)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    disc = ((yy - 12) ** 2 + (xx - 20) ** 2 <= 36).nonzero()  # a brush-stroke-like ROI
    scattered = torch.stack([torch.randint(0, 32, (300,)), torch.randint(0, 32, (300,))], 1)
    for pixels in (scattered[:5], scattered, disc):
        sparse = seg.logits_at(feats, pixels, (32, 32))
        expected = full[:, :, pixels[:, 0], pixels[:, 1]].permute(0, 2, 1)
        torch.testing.assert_close(sparse, expected, atol=1e-4, rtol=1e-4)
        taps = seg.pixel_taps(pixels, (32, 32), [f.shape[-2:] for f in feats])  # made once, used every step
        torch.testing.assert_close(seg.logits_at(feats, taps), expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="pixel taps were made for"):
        seg.logits_at(feats, seg.pixel_taps(disc, (32, 32), [(4, 4), (64, 64)]))


def test_logits_at_passes_the_same_gradient_to_the_features_as_the_full_map():
    seg, feats = random_segmenter_and_features("bilinear", n_classes=4)
    pixels = torch.stack([torch.randint(0, 32, (50,)), torch.randint(0, 32, (50,))], 1)
    target = torch.randint(0, 4, (50,))
    grads = []
    for sparse in (True, False):
        leaves = [f.detach().clone().requires_grad_(True) for f in feats]
        logits = (seg.logits_at(leaves, pixels, (32, 32))[0] if sparse
                  else seg.forward_naive(leaves)[0][:, pixels[:, 0], pixels[:, 1]].T)
        torch.nn.functional.cross_entropy(logits, target).backward()
        grads.append([f.grad for f in leaves])
    for sparse_grad, full_grad in zip(*grads):
        torch.testing.assert_close(sparse_grad, full_grad, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_logits_at_in_training_mode_uses_the_batch_statistics_like_the_members():
    """Evaluation mode folds the batch norms (tested above against the members); training mode must not."""
    seg, feats = random_segmenter_and_features("bilinear", n_classes=4)
    seg.train()
    first = [f[:1] for f in feats]  # one sample: the naive path's batch is then the same pixels
    everywhere = torch.stack(torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij"), -1).reshape(-1, 2)
    logits = seg.logits_at(first, everywhere, (32, 32))
    expected = seg.forward_naive(first).flatten(2).transpose(1, 2)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits, seg.eval().logits_at(first, everywhere, (32, 32)), atol=1e-2)


@torch.no_grad()
def test_cached_weights_follow_changes_to_the_segmenter():
    """The stacked first layers and the folded heads are cached between edit steps; changing a weight in place,
    loading other weights or updating a batch-norm statistic must not leave stale copies in use."""
    seg, feats = random_segmenter_and_features("bilinear", n_classes=4)
    pixels = torch.stack([torch.randint(0, 32, (40,)), torch.randint(0, 32, (40,))], 1)
    seg.logits_at(feats, pixels, (32, 32))  # fills both caches
    seg.members[0].first.weight.mul_(2)
    seg.members[1].layers[2].running_mean.add_(1)
    other = Segmenter(seg.config).eval()
    randomize_batchnorm(other)
    for changed in (seg, other):
        if changed is other:
            seg.load_state_dict(other.state_dict())
        expected = changed.forward_naive(feats)[:, :, pixels[:, 0], pixels[:, 1]].permute(0, 2, 1)
        torch.testing.assert_close(seg.logits_at(feats, pixels, (32, 32)), expected, atol=1e-4, rtol=1e-4)


def test_sparse_and_gathered_interpolation_agree():
    """The gathered path is what MPS runs; both must give the same values and gradients."""
    values = torch.randn(2, 7, 5)
    columns = torch.randint(0, 7, (4, 11))
    weights = torch.rand(4, 11)
    weights[1, :3] = 0
    results = []
    for sparse in (True, False):
        leaf = values.clone().requires_grad_(True)
        out = InterpolationMatrix(columns, weights, 7)(leaf, sparse=sparse)
        (out * torch.arange(5.0)).sum().backward()
        results.append((out, leaf.grad))
    expected = (weights[None, :, :, None] * values[:, columns]).sum(1)
    torch.testing.assert_close(results[0][0], expected)
    torch.testing.assert_close(results[1][0], expected)
    torch.testing.assert_close(results[0][1], results[1][1])


# -- the dense full map (the path CUDA and MPS take) -----------------------------------------------------------------
def segmenter_with_members(mode: str, n_members: int, n_classes: int = 5) -> tuple[Segmenter, list[torch.Tensor]]:
    g = tiny_generator()
    seg = Segmenter(SegmenterConfig(tuple(g.feature_channels()), n_classes=n_classes, n_members=n_members,
                                    upsample_mode=mode)).eval()
    randomize_batchnorm(seg)
    _, feats = g.synthesis(g.to_wplus(g.mapping(torch.randn(2, 32))), return_features=True)
    return seg, feats


ROW = 2 * 32 * 128  # first-layer elements of one canvas row of one member: batch 2, 32 px wide, h1 = 128


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("n_members", [1, 3])
@pytest.mark.parametrize("size", [None, (40, 40), (30, 50), (17, 9)], ids=["canvas", "up", "odd", "down"])
@torch.no_grad()
def test_dense_full_map_equals_naive_and_banded(mode, n_members, size):
    seg, feats = segmenter_with_members(mode, n_members)
    naive, banded = seg.forward_naive(feats, size), seg(feats, size, dense=False)
    for max_elements in (None, 3 * ROW * n_members, 2 * ROW, 1):  # whole, 3-row bands, member groups, 1 by 1
        dense = seg(feats, size, dense=True, max_elements=max_elements)
        assert dense.shape == naive.shape
        torch.testing.assert_close(dense, naive, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(dense, banded, atol=1e-5, rtol=1e-5)
    top2 = banded.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4  # labels can only differ where two logits tie within rounding
    assert torch.equal(seg.forward_dense(feats, size).argmax(1)[clear], banded.argmax(1)[clear])


@torch.no_grad()
def test_dense_bands_and_member_groups_keep_within_the_bound_and_do_not_change_the_result(monkeypatch):
    seg, feats = segmenter_with_members("bilinear", 3)
    whole = seg.forward_dense(feats)
    seen = []
    original = Segmenter._dense_first_layer

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out.shape)
        return out
    monkeypatch.setattr(Segmenter, "_dense_first_layer", spy)
    for max_elements, expected_rows, expected_members in ((3 * ROW * 3, 3, 3), (2 * ROW, 1, 2), (ROW, 1, 1)):
        seen.clear()
        out = seg.forward_dense(feats, max_elements=max_elements)
        torch.testing.assert_close(out, whole, atol=1e-6, rtol=1e-6)
        assert all(shape.numel() <= max_elements for shape in seen)
        assert max(shape[2] for shape in seen) == expected_rows
        assert max(shape[1] for shape in seen) == expected_members * 128
        assert sum(shape[2] * shape[1] for shape in seen) == 32 * 3 * 128  # every row of every member once
    assert seen[-1][2] == 1 and len(seen) == 32 * 3


@torch.no_grad()
def test_dense_path_builds_no_interpolation_matrices(monkeypatch):
    """The device path must not do per-band host work: no taps, no sparse matrices."""
    seg, feats = segmenter_with_members("bilinear", 2)
    expected = seg(feats, dense=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("the dense path built pixel taps")
    monkeypatch.setattr(Segmenter, "pixel_taps", forbidden)
    monkeypatch.setattr(InterpolationMatrix, "__call__", forbidden)
    torch.testing.assert_close(seg(feats, dense=True, max_elements=3 * ROW * 2), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_the_cpu_keeps_the_banded_path_and_training_mode_refuses_the_dense_one():
    seg, feats = segmenter_with_members("bilinear", 2)
    assert torch.equal(seg(feats), seg(feats, dense=False))  # CPU results stay what they were
    seg.train()
    assert torch.equal(seg(feats), seg(feats, dense=False))
    with pytest.raises(ValueError, match="evaluation-mode"):
        seg(feats, dense=True)


# -- the static-shape ROI read (what a captured edit step runs) -----------------------------------------------------
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_roi_table_sample_reads_the_same_logits_and_gradients_as_logits_at(mode):
    seg, feats = segmenter_with_members(mode, 3, n_classes=4)
    feats = [f[:1] for f in feats]
    resolutions = [tuple(f.shape[-2:]) for f in feats]
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    region = ((yy - 12) ** 2 + (xx - 20) ** 2 <= 60).nonzero()  # 185 pixels
    kinds = set()
    for sample_size in (region.shape[0], 40, 7):  # whole region, then samples that make finer maps "corners"
        table = seg.roi_table(region, (32, 32), resolutions, sample_size)
        kinds.update(entry.kind for entry in table.entries.values())
        sample = torch.randperm(region.shape[0], generator=torch.Generator().manual_seed(sample_size))
        sample = sample[:sample_size].sort().values
        target = torch.randint(0, 4, (sample_size,))
        results = []
        for static in (True, False):
            leaves = [f.detach().clone().requires_grad_(True) for f in feats]
            logits = (seg.logits_at_sample(leaves, table, sample) if static
                      else seg.logits_at(leaves, region[sample], (32, 32)))
            torch.nn.functional.cross_entropy(logits[0], target).backward()
            results.append((logits.detach(), [f.grad for f in leaves]))
        torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-5)
        for static_grad, grad in zip(results[0][1], results[1][1]):
            torch.testing.assert_close(static_grad, grad, atol=1e-6, rtol=1e-4)
    assert kinds == {"direct", "sources", "corners"}
    with pytest.raises(ValueError, match="sample size"):
        seg.roi_table(region, (32, 32), resolutions, region.shape[0] + 1)
    with pytest.raises(ValueError, match="resolution of each"):
        seg.roi_table(region, (32, 32), list(dict.fromkeys(resolutions)), 7)
    doubled = seg.roi_table(region, (64, 64), [(2 * h, 2 * w) for h, w in resolutions], 7)
    with pytest.raises(ValueError, match="made for maps"):
        seg.logits_at_sample(feats, doubled, sample[:7])


@pytest.mark.parametrize("training", [False, True])
@torch.no_grad()
def test_member_logits_are_each_members_own_and_average_to_the_ensemble(training):
    """The uncertainty map reads every member's logits; they must be the members' (batch norms folded or not) and
    their mean the ensemble's logits."""
    seg, feats = random_segmenter_and_features("bilinear", n_classes=4)
    seg.train(training)
    pixels = torch.stack([torch.randint(0, 32, (60,)), torch.randint(0, 32, (60,))], 1)
    members = seg.member_logits_at(feats, pixels, (32, 32))
    assert members.shape == (3, 2, 60, 4)
    torch.testing.assert_close(members.mean(0), seg.logits_at(feats, pixels, (32, 32)), atol=1e-4, rtol=1e-4)
    upsampled = torch.cat([torch.nn.functional.interpolate(f, size=(32, 32), mode="bilinear", align_corners=False)
                           for f in feats], 1)[:, :, pixels[:, 0], pixels[:, 1]]
    rows = upsampled.permute(0, 2, 1).reshape(-1, upsampled.shape[1])
    for k, member in enumerate(seg.members):
        torch.testing.assert_close(members[k].reshape(-1, 4), member(rows), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_the_banded_paths_taps_are_kept_for_the_next_map_bitwise(mode, monkeypatch):
    from editgan.networks import segmenter as module
    from editgan.networks.pixel_taps import BandTaps

    seg, feats = random_segmenter_and_features(mode, n_classes=5)
    monkeypatch.setattr(module, "BAND_TAPS", BandTaps())
    built: list[int] = []
    sparse = torch.sparse_coo_tensor

    def counted(*args, **kwargs):
        built.append(1)
        return sparse(*args, **kwargs)

    monkeypatch.setattr(torch, "sparse_coo_tensor", counted)
    with torch.no_grad():
        first = seg(feats, chunk=96)  # 11 bands of 3 rows
        assert len(module.BAND_TAPS) == 11 and len(built) == 11
        again = seg(feats, chunk=96)
        assert len(built) == 11, "the second map builds no interpolation matrix"
        rows = seg(feats, chunk=96, rows=(5, 20))
    assert torch.equal(again, first) and torch.equal(rows, first[..., 5:20, :])
    module.BAND_TAPS.clear()
    with torch.no_grad():
        assert torch.equal(seg(feats, chunk=96), first)  # made afresh: the same, bit for bit
    trained = seg.train()  # with gradients through the kept matrices, as Teach trains
    loss = trained(feats, chunk=96).sum()
    loss.backward()
    assert all(p.grad is not None for p in trained.members[0].parameters() if p.requires_grad)


def test_the_band_taps_cache_keeps_within_its_bound():
    from editgan.networks.pixel_taps import BandTaps, PixelTaps

    def taps(n: int) -> PixelTaps:
        return PixelTaps({(4, 4): torch.arange(n)}, None)

    cache = BandTaps(max_bytes=8 * 100)  # int64 sources: 100 of them
    first = cache.get("a", lambda: taps(60))
    assert cache.get("a", lambda: taps(1)) is first
    cache.get("b", lambda: taps(30))
    cache.get("c", lambda: taps(30))  # over the bound: the least recently used goes
    assert len(cache) == 2 and cache.get("a", lambda: taps(2)).sources[(4, 4)].numel() == 2
    made = []
    for _ in range(2):  # larger than the bound alone: given, not kept, so made again
        assert len(cache.get("huge", lambda: made.append(1) or taps(200)).sources[(4, 4)]) == 200
    assert len(made) == 2
