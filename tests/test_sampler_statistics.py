"""Samplers draw from the model's own distribution: draws of one sub-pixel against `softmax(log p / T)`.

"Cached equals naive" and "exported equals Keras" compare two samplers that share
the per-sub-pixel drawing code; these tests check that code itself. For a fixed
context (`complete` with every sub-pixel before the target known) the values
drawn at the target must follow the conditional that `kp.log_prob` computes
for it: `log_prob` scores each of the 256 values through the distribution's
`log_prob`, a different code path from the sampler's `channel_log_probs` and
Gumbel-max draw.

The distributions are made peaked (an entropy of about 1 to 3 nats), since
near-uniform ones cannot tell noise distributions apart: the categorical heads
get random biases (a different distribution per channel), the mixture's head
is scaled. Each chi-square test rejects a correct sampler with probability
ALPHA = 1e-4; the seeds are fixed, so the outcome is reproducible. Mutations
these tests kill are listed in docs/MUTATIONS.md.
"""

import numpy as np
import pytest
from helpers import peaked_model
from scipy import stats

import keras_pixelcnn as kp

ALPHA = 1e-4
DRAWS = 1000
SIZE = 4
LABEL = 1


def _peaked(architecture, channels):
    return peaked_model(architecture, channels, num_classes=3, size=SIZE)


def _target_distribution(model, context, target, temperature):
    """`softmax(log p(x_target = v | context before it) / T)` over v = 0..255, from `kp.log_prob`."""
    row, col, channel = target
    variants = np.repeat(context[None], 256, axis=0)
    variants[:, row, col, channel] = np.arange(256)
    log_p = kp.log_prob(model, variants, labels=np.full(256, LABEL), reduce=False)[:, row, col, channel]
    assert abs(np.exp(log_p).sum() - 1) < 1e-4  # a normalised conditional
    scaled = log_p / temperature
    probs = np.exp(scaled - scaled.max())
    return probs / probs.sum()


def _draws(model, context, target, temperature, method, seed, greedy=False):
    """The target sub-pixel's values in DRAWS completions of `context` known strictly before `target`."""
    known = np.repeat(context[None], DRAWS, axis=0)
    order = np.arange(context.size).reshape(context.shape)  # raster order (row, column, channel)
    mask = np.broadcast_to(order < order[target], known.shape)
    # One batch of all the draws: one trace (and XLA compile) and one run of the loop, not 16 of 64 images.
    completed = kp.complete(model, known, mask, seed=seed, temperature=temperature, labels=np.full(DRAWS, LABEL),
                            method=method, greedy=greedy, batch_size=None)
    np.testing.assert_array_equal(completed[mask], known[mask])
    return completed[(slice(None),) + target]


def _chi_square_p_value(values, probs):
    """Goodness of fit of `values` to `probs`, bins with expected count < 5 pooled into one."""
    counts = np.bincount(values, minlength=256)
    expected = probs * len(values)
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum())
    if wanted[-1] < 5:  # fold a small pooled bin into the largest one
        observed[np.argmax(wanted[:-1])] += observed[-1]
        wanted[np.argmax(wanted[:-1])] += wanted[-1]
        observed, wanted = observed[:-1], wanted[:-1]
    return stats.chisquare(observed, wanted).pvalue


CASES = [(a, c) for a in kp.ARCHITECTURES for c in (1, 3)]


@pytest.mark.parametrize("architecture, channels", CASES, ids=[f"{a}-{c}ch" for a, c in CASES])
def test_drawn_values_follow_the_models_conditionals(architecture, channels):
    """Each channel of the last pixel (G given R, B given R and G), cached and naive, T = 1 and T = 0.5 / 2."""
    model = _peaked(architecture, channels)
    context = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, channels))
    checked = []
    for channel in range(channels):
        target = (SIZE - 1, SIZE - 1, channel)
        probs = _target_distribution(model, context, target, 1.0)
        entropy = -(probs * np.log(np.maximum(probs, 1e-300))).sum()
        assert 0.3 < entropy < 4.0 and probs.max() < 0.95, (entropy, probs.max())  # peaked, not degenerate
        for method, temperature in [("cached", 1.0), ("naive", 1.0), ("cached", 0.5 if channel % 2 else 2.0)]:
            probs = _target_distribution(model, context, target, temperature)
            values = _draws(model, context, target, temperature, method, seed=100 + channel)
            p_value = _chi_square_p_value(values, probs)
            checked.append((channel, method, temperature, round(entropy, 2), p_value))
            assert p_value > ALPHA, checked


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_greedy_takes_the_most_likely_value(architecture):
    model = _peaked(architecture, 3)
    context = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3))
    for channel in range(3):
        target = (SIZE - 1, SIZE - 1, channel)
        probs = _target_distribution(model, context, target, 1.0)
        values = _draws(model, context, target, 1.0, "cached", seed=3, greedy=True)
        assert set(values.tolist()) == {int(np.argmax(probs))}
