"""The segmentation branch: an ensemble of DatasetGAN pixel classifiers on the generator's feature maps.

DatasetGAN upsamples every feature map to full resolution, concatenates them (≈6000 channels at 512 px, several
GB) and runs an MLP per pixel. The MLP's first layer is linear and so is upsampling, hence

    W · concat(up(f_1), …, up(f_L)) = Σ_i up(W_i · f_i)

where W_i is the block of W's columns that reads f_i. The factorized path projects every map at its own
resolution first and upsamples only the small projections: the same logits, a fraction of the memory and FLOPs.
``forward_naive`` keeps the reference computation for tests and benchmarks.

The full map is computed one of two ways. The banded path (the CPU's) reads each band of output pixels through
sparse interpolation matrices built per band (:mod:`editgan.networks.pixel_taps`), projecting only the source
pixels the band reads. The dense path
(CUDA's and MPS's, see :meth:`Segmenter.forward_dense`) projects whole rows of every map with one matrix product
and resizes the projections with ``F.interpolate``: no host-side work per band, a few large kernels, the same
logits; its memory is bounded by doing rows (and, for very wide branches, members) in groups.

The classifier's module layout matches DatasetGAN's ``pixel_classifier`` (Linear → ReLU → BatchNorm1d, twice,
then Linear), so the official checkpoints load unchanged once their ``module.`` prefix is removed. The ensemble
prediction is the mean of the members' raw logits, as in EditGAN.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from editgan.networks.pixel_taps import (BAND_TAPS, InterpolationMatrix, PixelTaps, axis_taps, bilinear_taps,
                                          pixel_bands, tap_corners, upsample_to)


@dataclass(frozen=True)
class SegmenterConfig:
    feature_channels: tuple[int, ...]
    """Channels of each generator feature map, in the generator's order."""
    n_classes: int
    n_members: int = 10
    hidden: tuple[int, int] | None = None
    """Hidden widths; None picks DatasetGAN's rule (256/128 for ≥ 32 classes, else 128/32)."""
    upsample_mode: str = "bilinear"
    """How feature maps reach full resolution. DatasetGAN trains and displays with bilinear; EditGAN's editing
    losses read nearest-upsampled features, a mismatch we do not reproduce."""

    def hidden_widths(self) -> tuple[int, int]:
        if self.hidden is not None:
            return tuple(self.hidden)  # type: ignore[return-value]
        return (256, 128) if self.n_classes >= 32 else (128, 32)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["feature_channels"] = list(self.feature_channels)
        d["hidden"] = list(self.hidden) if self.hidden is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        d = dict(d)
        d["feature_channels"] = tuple(d["feature_channels"])
        if d.get("hidden") is not None:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


DENSE_MAX_ELEMENTS = 2 ** 28
"""Default bound of :meth:`Segmenter.forward_dense`: elements of one band's first-layer activations (1 GiB in
fp32). About three such tensors are alive at once, so a full map needs ≈ 3 GiB beyond the feature maps and its
logits whatever the canvas: a 10-member, 32-class branch (2 560 first-layer channels) does a 512-px map in 3 bands
and a 1024-px one in 11, where computing it at once would take 8.4 and 22.6 GB."""




class PixelClassifier(nn.Module):
    """One DatasetGAN member: an MLP applied to every pixel's concatenated feature vector."""

    def __init__(self, in_channels: int, n_classes: int, hidden: tuple[int, int]):
        super().__init__()
        h1, h2 = hidden
        self.layers = nn.Sequential(
            nn.Linear(in_channels, h1), nn.ReLU(), nn.BatchNorm1d(h1),
            nn.Linear(h1, h2), nn.ReLU(), nn.BatchNorm1d(h2),
            nn.Linear(h2, n_classes),
        )

    @property
    def first(self) -> nn.Linear:
        return self.layers[0]

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything after the first linear layer, on (P, h1) rows."""
        return self.layers[1:](hidden)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(P, in_channels) per-pixel features → (P, n_classes) logits."""
        return self.layers(rows)


class Segmenter(nn.Module):
    """Ensemble of pixel classifiers reading a list of generator feature maps; returns mean logits."""

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        self.config = config
        in_channels = sum(config.feature_channels)
        self.members = nn.ModuleList(
            PixelClassifier(in_channels, config.n_classes, config.hidden_widths()) for _ in range(config.n_members))
        offsets = [0]
        for c in config.feature_channels:
            offsets.append(offsets[-1] + c)
        self.offsets = offsets
        self._stacked_weights: tuple[tuple, dict] | None = None  # see _members_first_weights
        self._fused: tuple[tuple, FusedHeads] | None = None  # see _fused_heads

    def _members_first_weights(self, groups: dict[tuple[int, int], list[int]]) -> dict[tuple[int, int], torch.Tensor]:
        """All members' first-layer weights stacked, split by feature resolution: {(h, w): (C_group, M·h1)}.

        Editing calls this every step with frozen weights, so the stacked copy is kept until a weight changes
        (see :func:`frozen_key`).
        """
        weights = [m.first.weight for m in self.members]
        key = frozen_key(weights)
        if key is not None:
            key += tuple(groups)
            if self._stacked_weights is not None and self._stacked_weights[0] == key:
                return self._stacked_weights[1]
        split = {res: torch.cat([torch.cat([w[:, self.offsets[i]:self.offsets[i + 1]] for i in indices], 1)
                                 for w in weights]).T.contiguous() for res, indices in groups.items()}
        if key is not None:
            self._stacked_weights = (key, split)
        return split

    def _check(self, features: list[torch.Tensor]) -> None:
        got = [f.shape[1] for f in features]
        if got != list(self.config.feature_channels):
            raise ValueError(f"segmenter expects feature maps with channels {list(self.config.feature_channels)}, "
                             f"got {got}")

    def _upsample(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return upsample_to(x, size, self.config.upsample_mode)

    def _resolution_groups(self, features: list[torch.Tensor]) -> dict[tuple[int, int], list[int]]:
        """Feature-map indices by resolution: maps of one resolution are projected and resized together."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(features):
            groups.setdefault(tuple(f.shape[-2:]), []).append(i)
        return groups

    def forward(self, features: list[torch.Tensor], size: tuple[int, int] | None = None,
                chunk: int = 2048, dense: bool | None = None, max_elements: int | None = None,
                rows: tuple[int, int] | None = None, should_stop: Callable[[], bool] | None = None
                ) -> torch.Tensor | None:
        """Feature maps → mean logits (N, n_classes, H, W); H, W default to the largest map's size.

        Computed factorized, a band of about ``chunk`` pixels at a time (see :meth:`logits_at`): each band
        projects only the source pixels it reads, so the memory beyond the feature maps stays that of one band
        at any resolution, where the naive computation holds every upsampled map at full resolution.

        ``dense`` picks :meth:`forward_dense` instead (``max_elements`` bounds its bands). By default it is used on
        CUDA and MPS in evaluation mode: there the banded path's per-band sparse matrices, built on the host, cost
        35× its time (1.7 s against 48 ms for a 512-px map on an H200). On the CPU the banded path stays: it was
        measured as fast or faster there (see the commit that added the dense path).

        ``rows`` = (first, stop) gives only those rows of the map (N, n_classes, stop − first, W), computed in the
        same bands as the whole map, so bitwise equal to its rows: an edit reads the label map outside the picture
        box without paying for the inside, which the caller already has.

        ``should_stop`` is asked before the map and, on the banded path, between its bands: when it says yes, the
        map is given up and the result is None (a slider's label map that a newer slide made out of date).
        """
        self._check(features)
        size = size or tuple(features[-1].shape[-2:])
        first, stop = rows if rows is not None else (0, size[0])
        if not 0 <= first < stop <= size[0]:
            raise ValueError(f"rows {rows} are not within the map's {size[0]} rows")
        if should_stop is not None and should_stop():
            return None
        if dense is None:
            dense = features[0].device.type in ("cuda", "mps") and not self.training
        if dense:
            return self.forward_dense(features, size, max_elements)[..., first:stop, :]
        resolutions = list(self._resolution_groups(features))
        bands, top = [], None
        for pixels in pixel_bands(size, chunk, features[0].device):
            band_top, band_bottom = int(pixels[0, 0]), int(pixels[-1, 0]) + 1
            if band_bottom <= first or band_top >= stop:
                continue
            if bands and should_stop is not None and should_stop():
                return None
            top = band_top if top is None else top
            key = (tuple(size), band_top, band_bottom, tuple(resolutions), self.config.upsample_mode,
                   str(pixels.device))
            taps = BAND_TAPS.get(key, lambda: self.pixel_taps(pixels, size, resolutions))
            logits = self.logits_at(features, taps)
            bands.append(logits.reshape(logits.shape[0], -1, size[1], logits.shape[-1]))
        return torch.cat(bands, 1).permute(0, 3, 1, 2)[..., first - top:stop - top, :]

    def forward_dense(self, features: list[torch.Tensor], size: tuple[int, int] | None = None,
                      max_elements: int | None = None) -> torch.Tensor:
        """Mean logits (N, n_classes, H, W) computed densely factorized, in evaluation mode.

        For a band of output rows, each resolution group's maps are sliced to the source rows the band reads,
        projected by all members' stacked first layers at once (one matrix product), interpolated to the band's
        rows (two row gathers and a lerp: exact bilinear or nearest taps, as :func:`bilinear_taps`) and to the
        canvas width with ``F.interpolate`` (whose row axis is then the identity), and summed; the heads run
        batched over members (:class:`FusedHeads`). Maps as large as the canvas are projected in place.

        Memory: a band holds at most ``max_elements`` (default :data:`DENSE_MAX_ELEMENTS`) first-layer
        activations, N · rows · W · members · h1; rows are cut first, members only when a single row of all of
        them is over the bound. Bands and member groups change the summation order only (≈ 1e-7).
        """
        self._check(features)
        if self.training:
            raise ValueError("the dense path computes evaluation-mode logits (batch norms folded): call eval(), "
                             "or use the banded path (dense=False)")
        height, width = size = tuple(size or features[-1].shape[-2:])
        groups = self._resolution_groups(features)
        weights = self._members_first_weights(groups)
        fused = self._fused_heads()
        n, m = features[0].shape[0], len(self.members)
        h1 = self.members[0].first.out_features
        members_per_group, band_rows = self.dense_plan(n, size, max_elements)
        dtype = torch.promote_types(features[0].dtype, fused.weight3.dtype)
        out = torch.empty(n, self.config.n_classes, height, width, device=features[0].device, dtype=dtype)
        for top in range(0, height, band_rows):
            bottom = min(top + band_rows, height)
            rows = torch.arange(top, bottom)  # taps on the host: their range is needed there, without a sync
            row_taps = {res: axis_taps(rows, res[0], height, self.config.upsample_mode)
                        for res in groups if res != size}
            logits = None
            for first_member in range(0, m, members_per_group):
                members = slice(first_member, min(m, first_member + members_per_group))
                hidden = self._dense_first_layer(features, groups, weights, row_taps, (top, bottom), size,
                                                 slice(members.start * h1, members.stop * h1))
                part = _dense_heads(hidden, fused, members, h1)
                logits = part if logits is None else logits + part
            out[:, :, top:bottom] = logits + fused.bias3[:, None, None]
        return out

    def dense_plan(self, batch: int, size: tuple[int, int], max_elements: int | None = None) -> tuple[int, int]:
        """(members per group, rows per band) that :meth:`forward_dense` uses for ``batch`` maps on a ``size``
        canvas under ``max_elements`` (default :data:`DENSE_MAX_ELEMENTS`)."""
        m, h1 = len(self.members), self.members[0].first.out_features
        height, width = size
        budget = max(1, int(max_elements or DENSE_MAX_ELEMENTS))
        members_per_group = max(1, min(m, budget // (batch * width * h1)))
        return members_per_group, max(1, min(height, budget // (batch * width * h1 * members_per_group)))

    def _dense_first_layer(self, features: list[torch.Tensor], groups: dict[tuple[int, int], list[int]],
                           weights: dict[tuple[int, int], torch.Tensor],
                           row_taps: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                           band: tuple[int, int], size: tuple[int, int], columns: slice) -> torch.Tensor:
        """The first layer (without bias) of the members whose output ``columns`` are given, on canvas rows
        ``band``: (N, k, rows, W), the sum over resolution groups of each group's interpolated projection."""
        top, bottom = band
        total = None
        for resolution, indices in groups.items():
            weight = weights[resolution][:, columns]  # (C, k)
            if resolution == tuple(size):
                source = torch.cat([features[i][:, :, top:bottom] for i in indices], 1)
                part = _project(source, weight)
            else:
                y0, y1, wy = row_taps[resolution]  # on the host
                first, last = int(y0.min()), int(y1.max()) + 1  # the source rows this band reads
                source = torch.cat([features[i][:, :, first:last] for i in indices], 1)
                projected = _project(source, weight)  # (N, k, rows read, w)
                part = projected.index_select(2, (y0 - first).to(projected.device))
                if self.config.upsample_mode != "nearest":
                    part.lerp_(projected.index_select(2, (y1 - first).to(projected.device)),
                               wy[:, None].to(projected.device, part.dtype))
                part = self._upsample(part, (bottom - top, size[1]))  # columns only: rows are already there
            total = part if total is None else total.add_(part)
        return total

    def pixel_taps(self, pixels: torch.Tensor, size: tuple[int, int],
                   resolutions: list[tuple[int, int]]) -> "PixelTaps":
        """What :meth:`logits_at` needs to read feature maps of these ``resolutions`` at ``pixels`` (P, 2) =
        (row, col) of the ``size`` canvas. An edit reads the same pixels every step, so it computes this once."""
        sources, direct, columns, tap_weights, n_sources = {}, [], [], [], 0
        for h, w in dict.fromkeys(tuple(r) for r in resolutions):
            if (h, w) == tuple(size):  # read where the pixels are: upsampling to its own size is the identity
                sources[(h, w)] = pixels[:, 0] * w + pixels[:, 1]
                direct.append((h, w))
                continue
            corners, corner_weights = tap_corners(bilinear_taps(pixels, (h, w), size, self.config.upsample_mode), w)
            needed, where = torch.unique(corners, return_inverse=True)  # the source pixels read, and which
            sources[(h, w)] = needed
            columns.append(where + n_sources)
            tap_weights.append(corner_weights)
            n_sources += needed.numel()
        matrix = (InterpolationMatrix(torch.cat(columns).cpu(), torch.cat(tap_weights).float().cpu(), n_sources)
                  if columns else None)
        return PixelTaps(sources, matrix, tuple(direct))

    def logits_at(self, features: list[torch.Tensor], pixels: "torch.Tensor | PixelTaps",
                  size: tuple[int, int] | None = None) -> torch.Tensor:
        """Mean logits (N, P, n_classes) at ``pixels`` (P, 2) = (row, col) of the ``size`` canvas only, or at
        the pixels of a :class:`PixelTaps` made by :meth:`pixel_taps`.

        The editing loss needs logits only inside the region of interest. Upsampling is linear, so the first
        layer is applied only to the source pixels that the P pixels' bilinear taps read, at each map's own
        resolution, and the results are interpolated afterwards with one sparse matrix (four taps per pixel and
        resolution). A coarse map has far fewer such pixels than P (a 32-px map under a 4 000-pixel ROI of a
        256-px canvas: about 90), so this costs a fraction of projecting the P gathered pixels, and it equals the
        full computation at those pixels. Maps as large as the canvas are read at the pixels themselves.
        """
        first = self._first_layer_at(features, pixels, size)
        n, p = first.shape[:2]
        return self._heads(first.reshape(n * p, -1)).reshape(n, p, -1)

    def member_logits_at(self, features: list[torch.Tensor], pixels: "torch.Tensor | PixelTaps",
                         size: tuple[int, int] | None = None) -> torch.Tensor:
        """Every member's own logits (M, N, P, n_classes) at ``pixels``, as :meth:`logits_at` reads them (their
        mean is its result). Where the members disagree, the ensemble is unsure: Teach shows it so that a person
        annotates next where the branch needs it most."""
        first = self._first_layer_at(features, pixels, size)
        n, p = first.shape[:2]
        return self._member_heads(first.reshape(n * p, -1)).reshape(len(self.members), n, p, -1)

    def _first_layer_at(self, features: list[torch.Tensor], pixels: "torch.Tensor | PixelTaps",
                        size: tuple[int, int] | None) -> torch.Tensor:
        """All members' first linear layer (without its bias) at the pixels, factorized: (N, P, M·h1)."""
        self._check(features)
        groups = self._resolution_groups(features)
        taps = pixels if isinstance(pixels, PixelTaps) else self.pixel_taps(pixels, size, list(groups))
        if set(taps.sources) != set(groups):
            raise ValueError(f"pixel taps were made for maps of sizes {list(taps.sources)}, got {list(groups)}")
        weights = self._members_first_weights(groups)
        direct, interpolated = None, []
        for resolution, indices in groups.items():
            needed = taps.sources[resolution].to(features[0].device)
            # gathered along the contiguous last axis: no transposed copy of the map, forward or backward
            sources = torch.cat([features[i].flatten(2).index_select(2, needed) for i in indices], 1)  # (N, C, U)
            projected = _batched_transposed_matmul(sources, weights[resolution])  # (N, U, out)
            if resolution in taps.direct:
                direct = projected if direct is None else direct + projected
            else:
                interpolated.append(projected)
        total = direct
        if interpolated:
            total = taps.interpolate(torch.cat(interpolated, 1))
            if direct is not None:
                total += direct  # in place: this is the largest tensor here
        return total

    def roi_table(self, pixels: torch.Tensor, size: tuple[int, int], resolutions: list[tuple[int, int]],
                  sample_size: int) -> "RoiTable":
        """Prepare the region ``pixels`` (R, 2) = (row, col) of the ``size`` canvas to be read ``sample_size``
        pixels at a time by :meth:`logits_at_sample`, with shapes that do not depend on which pixels are drawn.

        :meth:`logits_at` finds the source pixels a set of pixels reads with ``torch.unique`` and interpolates
        with a sparse matrix built on the host: right for an eager loop, impossible to capture in a CUDA graph or
        to compile without recompiling every step. Here every region pixel's four taps are found once. Per map
        resolution: maps as large as the canvas are read at the pixels; a map whose region sources are no more
        than the sample (the coarse ones) has all of them projected every step and the sample's taps gathered from
        the projections; a finer one has the sample's four corners gathered from the map, interpolated, and only
        then projected (the cheaper order when sources outnumber the sample). The same values as
        :meth:`logits_at`, to rounding. The members' stacked first layers and folded heads are kept with the
        table: valid while the segmenter's weights stay as they are (during one edit), in evaluation mode.
        """
        if self.training:
            raise ValueError("a ROI table holds evaluation-mode heads (batch norms folded): call eval() first")
        if len(resolutions) != len(self.config.feature_channels):
            raise ValueError(f"a ROI table needs the resolution of each of the {len(self.config.feature_channels)} "
                             f"feature maps, got {len(resolutions)}")
        groups: dict[tuple[int, int], list[int]] = {}
        for i, resolution in enumerate(resolutions):
            groups.setdefault(tuple(resolution), []).append(i)
        sample_size = int(sample_size)
        if not 0 < sample_size <= pixels.shape[0]:
            raise ValueError(f"sample size must be within 1..{pixels.shape[0]} (the region's pixels), got "
                             f"{sample_size}")
        entries = {}
        for h, w in groups:
            if (h, w) == tuple(size):
                entries[(h, w)] = RoiEntry("direct", pixels[:, 0] * w + pixels[:, 1])
                continue
            corners, weights = tap_corners(bilinear_taps(pixels, (h, w), size, self.config.upsample_mode), w)
            sources, columns = torch.unique(corners, return_inverse=True)
            if sources.numel() <= sample_size:
                entries[(h, w)] = RoiEntry("sources", sources, columns, weights.float())
            else:
                entries[(h, w)] = RoiEntry("corners", corners, None, weights.float())
        with torch.no_grad():
            first = self._members_first_weights(groups)
            heads = self._fused_heads()
        return RoiTable(tuple(size), groups, pixels.shape[0], sample_size, entries, first, heads)

    def logits_at_sample(self, features: list[torch.Tensor], table: "RoiTable", sample: torch.Tensor
                         ) -> torch.Tensor:
        """Mean logits (N, S, n_classes) at the region pixels ``sample`` (S,) indexes (S = the table's sample
        size, on the features' device), computed as :meth:`roi_table` describes. No host work, no shape that
        depends on the data: what a captured or compiled edit step runs."""
        self._check(features)
        groups = self._resolution_groups(features)
        if groups != table.groups:
            raise ValueError(f"the ROI table was made for maps of sizes {list(table.groups)}, got {list(groups)}")
        total = None
        for resolution, indices in groups.items():
            entry = table.entries[resolution]
            weight = table.first_weights[resolution]
            maps = [features[i].flatten(2) for i in indices]  # (N, C_i, h·w)
            if entry.kind == "direct":
                where = entry.index.index_select(0, sample)
                part = _batched_transposed_matmul(torch.cat([f.index_select(2, where) for f in maps], 1), weight)
            elif entry.kind == "sources":
                projected = _batched_transposed_matmul(
                    torch.cat([f.index_select(2, entry.index) for f in maps], 1), weight)  # (N, U, out)
                columns = entry.columns.index_select(1, sample)  # (4, S)
                weights = entry.weights.index_select(1, sample)
                part = None
                for k in range(4):
                    tap = projected.index_select(1, columns[k]) * weights[k][None, :, None]
                    part = tap if part is None else part + tap
            else:
                corners = entry.index.index_select(1, sample)  # (4, S) flat source indices
                weights = entry.weights.index_select(1, sample)
                source = torch.cat([f.index_select(2, corners.reshape(-1)) for f in maps], 1)
                source = (source.unflatten(2, corners.shape) * weights[None, None]).sum(2)  # (N, C, S)
                part = _batched_transposed_matmul(source, weight)
            total = part if total is None else total + part
        n, p = total.shape[:2]
        h1 = self.members[0].first.out_features
        return _fused_head_rows(total.reshape(n * p, -1), table.heads, len(self.members), h1).reshape(n, p, -1)

    def _heads(self, first: torch.Tensor) -> torch.Tensor:
        """Mean over members of everything after the first linear layer (without its bias), on (P, M·h1) rows."""
        h1 = self.members[0].first.out_features
        if self.training:  # batch-norm statistics of this batch: member by member
            out = 0
            # split, not slicing: the backward of one split is one concatenation, of each slice a zero-filled copy
            for member, hidden in zip(self.members, first.split(h1, dim=1)):
                out = out + member.head(hidden + member.first.bias)
            return out / len(self.members)
        return _fused_head_rows(first, self._fused_heads(), len(self.members), h1)

    def _member_heads(self, first: torch.Tensor) -> torch.Tensor:
        """Each member's logits (M, P, K) from (P, M·h1) first-layer rows without their bias."""
        h1 = self.members[0].first.out_features
        if self.training:
            return torch.stack([member.head(hidden + member.first.bias)
                                for member, hidden in zip(self.members, first.split(h1, dim=1))])
        fused = self._fused_heads()
        hidden = _fused_hidden_rows(first, fused, len(self.members), h1)
        return torch.baddbmm(fused.member_bias3, hidden, fused.weight3 * len(self.members))

    def _fused_heads(self) -> "FusedHeads":
        """The members' heads in evaluation mode as three batched layers, each batch norm folded into the linear
        layer after it, and the ensemble mean folded into the last one: the same logits with a few large
        operations instead of seven small ones a member. Cached until a parameter or statistic changes."""
        key = frozen_key([t for m in self.members for t in (*m.parameters(), *m.buffers())])
        if key is not None and self._fused is not None and self._fused[0] == key:
            return self._fused[1]
        weights2, biases2, weights3, biases3 = [], [], [], []
        for member in self.members:
            _, _, norm1, linear2, _, norm2, linear3 = member.layers
            w2, b2 = fold_batchnorm_into_linear(norm1, linear2)
            w3, b3 = fold_batchnorm_into_linear(norm2, linear3)
            weights2.append(w2.T)
            biases2.append(b2)
            weights3.append(w3.T)
            biases3.append(b3)
        m = len(self.members)
        fused = FusedHeads(bias1=torch.cat([member.first.bias for member in self.members]),
                           weight2=torch.stack(weights2), bias2=torch.stack(biases2)[:, None],
                           weight3=torch.stack(weights3) / m, bias3=torch.stack(biases3).mean(0),
                           member_bias3=torch.stack(biases3)[:, None])
        if key is not None:
            self._fused = (key, fused)
        return fused

    def forward_naive(self, features: list[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        """DatasetGAN's computation: upsample all maps, concatenate, MLP per pixel. Reference for tests."""
        self._check(features)
        size = size or tuple(features[-1].shape[-2:])
        stacked = torch.cat([self._upsample(f, size) for f in features], dim=1)
        n, c, hh, ww = stacked.shape
        rows = stacked.permute(0, 2, 3, 1).reshape(-1, c)
        logits = torch.stack([m(rows) for m in self.members]).mean(0)
        return logits.reshape(n, hh, ww, -1).permute(0, 3, 1, 2)

    def predict(self, features: list[torch.Tensor], size: tuple[int, int] | None = None,
                rows: tuple[int, int] | None = None, should_stop: Callable[[], bool] | None = None
                ) -> torch.Tensor | None:
        """Label map (N, H, W) int64: argmax of the ensemble's mean logits (only ``rows``, as :meth:`forward`);
        None when ``should_stop`` gave it up (see :meth:`forward`)."""
        logits = self.forward(features, size, rows=rows, should_stop=should_stop)
        return None if logits is None else logits.argmax(1)


def _batched_transposed_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, C, U), (C, K) → (N, U, K) = aᵀb per sample, without copying ``a`` transposed (nor stacking one)."""
    if a.shape[0] == 1:
        return (a[0].T @ b)[None]
    return torch.stack([x.T @ b for x in a])


def _project(source: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) maps, (C, k) weight → (N, k, h, w) = weightᵀ · maps per pixel: a 1×1 convolution as one matrix
    product (the transposed weight is a view, read by BLAS as such)."""
    n, c, h, w = source.shape
    flat = source.reshape(n, c, h * w)
    if n == 1:
        return (weight.T @ flat[0]).reshape(1, -1, h, w)
    return torch.matmul(weight.T, flat).reshape(n, -1, h, w)


def _fused_hidden_rows(first: torch.Tensor, fused: "FusedHeads", m: int, h1: int) -> torch.Tensor:
    """Every member's last hidden layer (M, P, h2) in evaluation mode, from (P, m·h1) first-layer rows without
    bias: the members' middle layers as one batched matrix product (see :class:`FusedHeads`)."""
    hidden = (first + fused.bias1).relu_().view(first.shape[0], m, h1).transpose(0, 1)
    return torch.relu(torch.baddbmm(fused.bias2, hidden, fused.weight2))


def _fused_head_rows(first: torch.Tensor, fused: "FusedHeads", m: int, h1: int) -> torch.Tensor:
    """Mean logits (P, K) of ``m`` members from their first layers' outputs (P, m·h1) without bias, rows of
    pixels: the members' remaining layers as two batched matrix products (see :class:`FusedHeads`)."""
    return torch.bmm(_fused_hidden_rows(first, fused, m, h1), fused.weight3).sum(0) + fused.bias3


def _dense_heads(first: torch.Tensor, fused: "FusedHeads", members: slice, h1: int) -> torch.Tensor:
    """Sum over the ``members`` of their heads (weights already divided by the member count, without the last
    bias) on a first-layer block (N, g·h1, rows, W), channels first: (N, n_classes, rows, W). Per sample, two
    batched matrix products over members with the pixels as the long axis; the first-layer block is reused in
    place for its bias and ReLU."""
    n, _, rows, width = first.shape
    g = members.stop - members.start
    hidden = first.view(n, g, h1, rows * width)
    hidden.add_(fused.bias1[members.start * h1:members.stop * h1].view(g, h1, 1)).relu_()
    weight2 = fused.weight2[members].transpose(1, 2)  # (g, h2, h1)
    bias2 = fused.bias2[members].transpose(1, 2)  # (g, h2, 1)
    weight3 = fused.weight3[members].transpose(1, 2)  # (g, K, h2)
    out = []
    for sample in hidden:
        second = torch.baddbmm(bias2, weight2, sample).relu_()  # (g, h2, P)
        out.append(torch.bmm(weight3, second).sum(0))  # (K, P)
    return torch.stack(out).view(n, -1, rows, width)


@dataclass
class RoiEntry:
    """How :meth:`Segmenter.logits_at_sample` reads the maps of one resolution (see :meth:`Segmenter.roi_table`).
    ``direct``: ``index`` (R,) the region pixels' flat indices. ``sources``: ``index`` (U,) the source pixels
    the region reads, ``columns`` (4, R) each region pixel's taps among them, ``weights`` (4, R). ``corners``:
    ``index`` (4, R) each region pixel's taps as flat indices into the map, ``weights`` (4, R)."""
    kind: str
    index: torch.Tensor
    columns: torch.Tensor | None = None
    weights: torch.Tensor | None = None


@dataclass
class RoiTable:
    """A region prepared for reading a fixed-size sample of its pixels every step (see
    :meth:`Segmenter.roi_table`)."""
    size: tuple[int, int]
    groups: dict[tuple[int, int], list[int]]
    """Feature-map indices by resolution, as :meth:`Segmenter._resolution_groups` finds them."""
    n_pixels: int
    sample_size: int
    entries: dict[tuple[int, int], RoiEntry]
    first_weights: dict[tuple[int, int], torch.Tensor]
    heads: "FusedHeads"


@dataclass
class FusedHeads:
    """All members' layers after the first, batched over members (M), batch norms folded in (see
    :meth:`Segmenter._fused_heads`)."""
    bias1: torch.Tensor  # (M·h1,) the first layer's biases
    weight2: torch.Tensor  # (M, h1, h2)
    bias2: torch.Tensor  # (M, 1, h2)
    weight3: torch.Tensor  # (M, h2, K), divided by M
    bias3: torch.Tensor  # (K,) mean over members
    member_bias3: torch.Tensor  # (M, 1, K) each member's own


def frozen_key(tensors: list[torch.Tensor]) -> tuple | None:
    """What a value derived from ``tensors`` may be cached under: it changes when one of them is changed in place
    (its version counter moves), replaced or moved (its storage does). None when gradients must flow to them
    (training): a cached value would cut them off."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    return tuple((t.data_ptr(), t._version, t.device) for t in tensors)


def fold_batchnorm_into_linear(norm: nn.BatchNorm1d, linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``linear(norm(x))`` as one linear layer, with the norm's running statistics."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    return linear.weight * scale, linear.bias + linear.weight @ shift
