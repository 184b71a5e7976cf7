"""Audio-texture losses on the grown spectrogram (no image networks).

A sound texture is described by statistics that do not depend on *where* in the
loop something happens: second-order statistics of random temporal filters
(Gram matrices), the envelope's autocorrelation (rhythm), the average spectrum
(keeps pitch and timbre where the target has them) and, optionally, the full
feature distributions (sliced optimal transport). A two-sided diversity term keeps
different seeds from collapsing onto one circularly shifted copy, and from drifting
further apart than two excerpts of the target do.

All terms are computed per batch item, so the sample pool can rank items.
Spectrograms are in the NCA's scaled domain ``s = (ln_mel - offset) / scale``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; defaults are the documented recommendation."""

    #: Gram matrices of the random temporal conv ensemble (texture).
    gram: float = 1.0
    #: Envelope autocorrelation over 0.2-2 s lags (rhythm, periodicity).
    acf: float = 1.0
    #: Two-sided hinge on the shift-invariant distance between seeds: apart enough
    #: not to collapse, but no further apart than excerpts of the target itself.
    diversity: float = 0.2
    #: L1 on the time-averaged spectrum (keeps energy in the target's bands).
    l1: float = 1.0
    #: Sliced optimal transport on the same conv features (optional, off by default).
    sot: float = 0.0
    #: 1-D optimal transport between the per-band distributions of frame values over time
    #: (each mel band and the broadband envelope, sorted and compared at matched quantiles).
    #: Off by default; it is the one term with a gradient that splits a flat field into
    #: loud and quiet frames (a Gram matrix or autocorrelation of a constant is flat in
    #: every direction that creates events), so it lets a click train grow from nothing.
    marginal: float = 0.0
    #: Penalty on state values outside [-overflow_bound, overflow_bound] (stability).
    overflow: float = 1.0
    #: Diversity band, as multiples of the target's median crop-to-crop distance: seeds
    #: closer than ``diversity_low`` are pushed apart, farther than ``diversity_high`` pulled
    #: together. Not weights; they live here because they shape the diversity term.
    diversity_low: float = 0.5
    #: See ``diversity_low``. Without a ceiling, speckle noise that differs between seeds is
    #: nearly free (a Gram matrix hardly sees it) and the first shipped models grew seeds
    #: 4-25x more different than two excerpts of the recording.
    diversity_high: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)


#: Temporal widths (frames) of the random filter ensemble; 2 frames = 23 ms, 64 = 0.74 s.
WIDTHS = (2, 4, 8, 16, 32, 64)
#: Random filters per width; small enough that Gram matrices stay cheap.
FILTERS = 32
#: Fixed seed so the ensemble (hence the loss) is identical across runs and resumes.
ENSEMBLE_SEED = 20240611
#: Mel bands are summed into this many envelopes for the rhythm term.
ACF_BANDS = 4
#: Rhythm lags in seconds (capped at a third of the training grid).
ACF_MIN_S, ACF_MAX_S = 0.2, 2.0
#: State values beyond this bound are penalised.
OVERFLOW_BOUND = 3.0
#: Softening of the log-ratio upper hinge, in the scaled domain: 0.01 nats^2 at spec_scale 4,
#: the same epsilon as the evaluation's diversity error, so a steady tone is not asked for
#: bit-identical seeds.
DIVERSITY_EPS = 0.01 / 16


def _roll_pad(x: torch.Tensor, k: int) -> torch.Tensor:
    """Left-pad the time axis circularly so a width-k valid conv keeps the length."""
    if k <= 1:
        return x
    return torch.cat([x[..., -(k - 1) :], x], dim=-1)


def _envelopes(s: torch.Tensor) -> torch.Tensor:
    """Band envelopes ``[B, ACF_BANDS, T]`` (mean over groups of mel bins)."""
    b, m, t = s.shape
    return s.reshape(b, ACF_BANDS, m // ACF_BANDS, t).mean(dim=2)


class TextureLoss(torch.nn.Module):
    """Target statistics plus the loss that compares grown spectrograms to them."""

    def __init__(
        self,
        target: torch.Tensor,
        frames: int,
        fps: float,
        weights: LossWeights = LossWeights(),
        acf_min_s: float = ACF_MIN_S,
    ):
        """``target``: scaled spectrogram ``[n_mels, T]`` with ``T >= frames``.

        ``acf_min_s``: shortest rhythm lag. The default 0.2 s is the metric's; training may
        go down to one frame, where the autocorrelation sees an event's width and the gap
        after it. The marginal term cannot: one-frame events every 5 frames fill the same
        share of loud frames as 3-frame clicks every 21.5, so without these lags a click
        model is free to grow the former.
        """
        super().__init__()
        self.weights = weights
        self.frames = frames
        n_mels, t_len = target.shape
        if n_mels % ACF_BANDS:
            raise ValueError(f"n_mels ({n_mels}) must be divisible by {ACF_BANDS}")
        g = torch.Generator().manual_seed(ENSEMBLE_SEED)
        self.widths = tuple(w for w in WIDTHS if w <= frames)
        self.filters = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for w in self.widths:
            weight = torch.randn(FILTERS, n_mels, w, generator=g) / (n_mels * w) ** 0.5
            self.filters.append(torch.nn.Parameter(weight, requires_grad=False))
            self.biases.append(torch.nn.Parameter(torch.randn(FILTERS, generator=g) * 0.1, requires_grad=False))

        tgt = target.unsqueeze(0).float()
        with torch.no_grad():
            feats = self._features(tgt, circular=False)
            self.t_grams = [_gram(f)[0] for f in feats]
            # Sorted target features feed the optional sliced-OT term.
            self.t_feats = [f[0] for f in feats]
            self.register_buffer("t_mean", tgt.mean(dim=-1)[0])
            lo = max(1, round(acf_min_s * fps))
            # On a circular grid of T frames the autocorrelation near T/2 is forced
            # towards -1 for any smooth envelope, so lags beyond T/3 would ask for the
            # impossible; the term switches itself off on grids shorter than 3 x 0.2 s.
            hi = min(round(ACF_MAX_S * fps), frames // 3)
            # A buffer, so the lags follow the loss to the training device.
            self.register_buffer("lags", torch.arange(lo, hi + 1) if hi >= lo else torch.arange(0), persistent=False)
            # A loop of ``frames`` frames can only match what an excerpt of that length has:
            # the whole target's autocorrelation also holds its slow dynamics (loud and soft
            # passages, notes and rests), which excerpts of the recording itself miss as badly
            # as any grown loop does.
            self.register_buffer("t_acf", _crop_acf(_envelopes(tgt)[0], frames, self.lags))
            if not 0 < weights.diversity_low <= weights.diversity_high:
                raise ValueError("need 0 < diversity_low <= diversity_high")
            median = 2 * _diversity_margin(tgt[0], frames)
            self.margin = weights.diversity_low * median
            self.ceiling = weights.diversity_high * median if t_len >= frames else None
            # Sorted per-band values (and the broadband envelope) of the whole target, for
            # the marginal term's quantiles.
            self.register_buffer("t_sorted", _band_values(tgt)[0].sort(dim=-1).values)

    def _features(self, s: torch.Tensor, circular: bool) -> list[torch.Tensor]:
        """Spectrum itself plus ReLU responses of the random filters, each ``[B, K, T']``."""
        out = [s]
        for w, b in zip(self.filters, self.biases):
            k = w.shape[-1]
            x = _roll_pad(s, k) if circular else s
            out.append(torch.relu(F.conv1d(x, w, b)))
        return out

    def _apply(self, fn, *args, **kwargs):
        """``.to(device)`` also moves the per-width target statistics, which are plain lists."""
        super()._apply(fn, *args, **kwargs)
        for name in ("t_grams", "t_feats"):
            if hasattr(self, name):
                setattr(self, name, [fn(t) for t in getattr(self, name)])
        return self

    def forward(self, s: torch.Tensor, state: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-item loss terms for grown spectrograms ``s [B, n_mels, frames]``.

        ``state`` (the full NCA state) is only needed for the overflow term.
        Returns a dict of ``[B]`` tensors including ``total``.
        """
        w = self.weights
        feats = self._features(s, circular=True)
        terms: dict[str, torch.Tensor] = {}
        gram = s.new_zeros(s.shape[0])
        for f, tg in zip(feats, self.t_grams):
            gm = _gram(f)
            # Relative L1 rather than squared error: grows only quadratically with the
            # spectrogram's amplitude, so one overshooting rollout cannot swamp the batch.
            gram = gram + (gm - tg).abs().sum(dim=(1, 2)) / tg.abs().sum().clamp_min(1e-8)
        terms["gram"] = gram / len(feats)
        if len(self.lags):
            acf = _circular_acf(_envelopes(s), self.lags)
            terms["acf"] = ((acf - self.t_acf) ** 2).mean(dim=(1, 2))
        else:
            terms["acf"] = s.new_zeros(s.shape[0])
        terms["l1"] = (s.mean(dim=-1) - self.t_mean).abs().mean(dim=-1)
        terms["diversity"] = _diversity(s, self.margin, self.ceiling)
        if w.marginal > 0:
            terms["marginal"] = _marginal_ot(_band_values(s), self.t_sorted)
        if w.sot > 0:
            terms["sot"] = sum(_sliced_ot(f, tf) for f, tf in zip(feats, self.t_feats)) / len(feats)
        if state is not None and w.overflow > 0:
            terms["overflow"] = (state - state.clamp(-OVERFLOW_BOUND, OVERFLOW_BOUND)).abs().mean(
                dim=(1, 2, 3)
            )
        total = s.new_zeros(s.shape[0])
        for name, value in terms.items():
            total = total + getattr(w, name) * value
        terms["total"] = total
        return terms


def _gram(f: torch.Tensor) -> torch.Tensor:
    """Time-averaged feature Gram matrices ``[B, K, K]``."""
    return torch.einsum("bkt,blt->bkl", f, f) / f.shape[-1]


def _circular_acf(env: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """Normalised circular autocorrelation ``[B, bands, len(lags)]`` of a looping envelope."""
    x = env - env.mean(dim=-1, keepdim=True)
    spec = torch.fft.rfft(x, dim=-1)
    ac = torch.fft.irfft(spec * spec.conj(), n=x.shape[-1], dim=-1)
    return ac[..., lags] / (ac[..., :1] + 1e-3 * x.shape[-1])


#: Excerpts averaged for the target's autocorrelation (evenly spaced over the target).
ACF_CROPS = 64


def _crop_acf(env: torch.Tensor, frames: int, lags: torch.Tensor) -> torch.Tensor:
    """Mean circular autocorrelation ``[bands, len(lags)]`` of ``frames``-wide target excerpts.

    Each excerpt is treated as a loop, exactly as a grown item is, so the target and the
    grown loops are compared like with like.
    """
    if not len(lags):
        return torch.zeros(env.shape[0], 0)
    t = env.shape[-1]
    frames = min(frames, t)
    starts = torch.linspace(0, t - frames, min(ACF_CROPS, t - frames + 1)).round().long().unique()
    crops = torch.stack([env[:, int(a) : int(a) + frames] for a in starts])
    return _circular_acf(crops, lags).mean(dim=0)


def _shift_distances(s: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between every pair of items, minimised over circular time shifts."""
    b, m, t = s.shape
    spec = torch.fft.rfft(s, dim=-1)
    xc = torch.fft.irfft(torch.einsum("imf,jmf->ijf", spec, spec.conj()), n=t, dim=-1)
    energy = (s * s).sum(dim=(1, 2))
    best = xc.max(dim=-1).values
    return (energy[:, None] + energy[None, :] - 2 * best).clamp_min(0) / (m * t)


def _diversity(s: torch.Tensor, margin: float, ceiling: float | None = None) -> torch.Tensor:
    """Per-item two-sided hinge on the distance (up to shift) to every other item.

    Closer than ``margin``: linear penalty (seeds must not collapse). Farther than
    ``ceiling``: ``ln((d + eps) / (ceiling + eps))``, the log ratio the evaluation's
    diversity error uses, so the pull is scale-free from a steady tone to birdsong.
    """
    b = s.shape[0]
    if b < 2 or (margin <= 1e-6 and ceiling is None):
        return s.new_zeros(b)
    d = _shift_distances(s)
    off = ~torch.eye(b, dtype=torch.bool, device=s.device)
    pen = torch.zeros_like(d)
    if margin > 1e-6:
        pen = pen + torch.relu(margin - d) / margin
    if ceiling is not None:
        pen = pen + torch.relu(torch.log((d + DIVERSITY_EPS) / (ceiling + DIVERSITY_EPS)))
    return (pen * off).sum(dim=1) / (b - 1)


def _diversity_margin(target: torch.Tensor, frames: int, pairs: int = 16) -> float:
    """Half the typical shift-invariant distance between two crops of the target.

    A steady tone has near-zero margin (seeds may legitimately agree); a varied
    recording asks for correspondingly varied grown loops.
    """
    t = target.shape[-1]
    if t < frames:
        return 0.0
    g = torch.Generator().manual_seed(7)
    starts = torch.randint(0, t - frames + 1, (2 * pairs,), generator=g)
    crops = torch.stack([target[:, int(a) : int(a) + frames] for a in starts])
    d = _shift_distances(crops)
    vals = torch.stack([d[2 * i, 2 * i + 1] for i in range(pairs)])
    return float(0.5 * vals.median())


def _band_values(s: torch.Tensor) -> torch.Tensor:
    """Every mel band plus the broadband envelope (their mean), ``[B, n_mels + 1, T]``.

    The broadband row is what makes the marginal term ask for *synchronous* events: per
    band alone, each band could spike at its own times and still match.
    """
    return torch.cat([s, s.mean(dim=1, keepdim=True)], dim=1)


def _marginal_ot(v: torch.Tensor, t_sorted: torch.Tensor) -> torch.Tensor:
    """Per-item 1-D Wasserstein-2 distance between each row's values over time and the target's.

    ``v [B, R, T]`` grown rows, ``t_sorted [R, T']`` the target's rows sorted over time. In
    one dimension optimal transport is sorting: the k-th smallest grown value is matched
    with the target's value at the same quantile (the midpoint of its 1/T slice of T').
    Shift-invariant like every other term; on a flat field the sort still assigns each
    frame a quantile, so the gradient raises some frames and lowers the others. The
    mean over the bands and the broadband row count half each.
    """
    t, tt = v.shape[-1], t_sorted.shape[-1]
    idx = ((torch.arange(t) + 0.5) * tt / t).long().clamp_max(tt - 1)
    err = ((v.sort(dim=-1).values - t_sorted[:, idx].unsqueeze(0)) ** 2).mean(dim=-1)
    # The broadband row weighs as much as all bands together: with it at 1/81 of the
    # term, a click target first grew independent per-cell speckles (every band's
    # distribution right, no clicks).
    return 0.5 * (err[:, :-1].mean(dim=-1) + err[:, -1])


def _sliced_ot(f: torch.Tensor, tf: torch.Tensor, n_proj: int = 32) -> torch.Tensor:
    """Sliced 1-D optimal transport between per-frame features and the target's."""
    k = f.shape[1]
    proj = torch.randn(k, n_proj)
    proj = proj / proj.norm(dim=0, keepdim=True)
    pg = torch.einsum("bkt,kp->bpt", f, proj).sort(dim=-1).values
    pt = torch.einsum("kt,kp->pt", tf, proj).sort(dim=-1).values
    idx = torch.linspace(0, pt.shape[-1] - 1, f.shape[-1]).round().long()
    return ((pg - pt[:, idx].unsqueeze(0)) ** 2).mean(dim=(1, 2))
