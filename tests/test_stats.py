"""zfbook.stats against values computed independently: hand-worked examples, SciPy's own
tests, a textbook Holm example, and simulations that a wrong formula fails."""
import math

import numpy as np
import pytest
from scipy import stats as st

from zfbook import stats as S

#: t(0.975) on 2 degrees of freedom in closed form, (2p − 1) / sqrt(2p(1 − p)) (a printed
#: table of Student's t says 4.303)
T975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)


# ----------------------------------------------------------------------------- mean_interval
def test_mean_interval_by_hand():
    iv = S.mean_interval([1, 2, 3])
    half = T975_2 * 1 / math.sqrt(3)  # sd 1, n 3
    assert (iv.mean, iv.sd, iv.n, iv.level) == (2.0, 1.0, 3, 0.95)
    assert iv.low == pytest.approx(2 - half, abs=1e-12) and iv.high == pytest.approx(2 + half, abs=1e-12)
    assert iv.se == pytest.approx(1 / math.sqrt(3))
    # a wider level is wider, and the interval always contains the mean
    wide = S.mean_interval([1, 2, 3], 0.99)
    assert wide.low < iv.low < iv.mean < iv.high < wide.high


def test_mean_interval_formats_and_edge_cases():
    iv = S.mean_interval([84.0, 86.5, 88.5])
    assert iv.format(unit="%") == "86.3% [80.7, 91.9] (95% t-interval, n = 3)"
    assert str(iv) == "86.3 [80.7, 91.9] (95% t-interval, n = 3)"
    assert iv.format(2) == "86.33 [80.73, 91.93] (95% t-interval, n = 3)"
    assert S.mean_interval([-1.0, -2.0, -3.0]).format().startswith("\u22122.0 [\u22124.5, 0.5]")
    one = S.mean_interval([86.25])
    assert one.n == 1 and math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.sd)
    assert one.format(unit="%") == "86.2% (n = 1, no interval)"
    flat = S.mean_interval([5, 5, 5])  # no spread: a zero-width interval
    assert (flat.low, flat.high, flat.sd) == (5.0, 5.0, 0.0)
    pct = S.mean_interval([0.8, 0.9]).scaled(100)
    assert pct.mean == pytest.approx(85) and pct.sd == pytest.approx(100 * math.sqrt(0.005))
    assert pct.low == pytest.approx(100 * S.mean_interval([0.8, 0.9]).low)
    assert S.mean_interval(x for x in (1, 2, 3)) == S.mean_interval([1, 2, 3])  # any iterable


def _coverage(n, trials, wrong_z=False):
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(trials):
        x = rng.normal(10.0, 3.0, n)
        if wrong_z:  # the z-interval with the sample sd: the formula a t-interval must not be
            half = 1.959964 * x.std(ddof=1) / math.sqrt(n)
            lo, hi = x.mean() - half, x.mean() + half
        else:
            iv = S.mean_interval(x)
            lo, hi = iv.low, iv.high
        hits += lo <= 10.0 <= hi
    return hits / trials


def test_t_interval_covers_95_percent_where_z_does_not():
    # 3000 samples of 3: the coverage's standard error is 0.4 points; a z-interval covers ~81%
    assert abs(_coverage(3, 3000) - 0.95) < 0.015
    assert abs(_coverage(3, 3000, wrong_z=True) - 0.95) > 0.1


# ----------------------------------------------------------------------------- welch, paired
@pytest.mark.parametrize("seed", range(5))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1 + seed, 3 + seed)
    b = rng.normal(1, 2, 4 + 2 * seed)
    d = S.welch(a, b)
    ref = st.ttest_ind(a, b, equal_var=False)
    assert d.diff == pytest.approx(a.mean() - b.mean())
    assert d.t == pytest.approx(ref.statistic) and d.p == pytest.approx(ref.pvalue)
    assert d.df == pytest.approx(ref.df)
    ci = ref.confidence_interval(0.9)
    d90 = S.welch(a, b, 0.9)
    assert (d90.low, d90.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d.low < d90.low < d.diff < d90.high < d.high
    assert (d.n_a, d.n_b, d.method) == (len(a), len(b), "Welch")


def test_welch_by_hand_and_without_a_test():
    # a: mean 2, var 1; b: mean 5, var 4 -> se² = 1/3 + 4/4, df = se⁴ / ((1/3)²/2 + 1²/3)
    d = S.welch([1, 2, 3], [3, 4, 6, 7])
    se2 = 1 / 3 + 10 / 3 / 4
    assert d.diff == -3.0 and d.t == pytest.approx(-3 / math.sqrt(se2))
    assert d.df == pytest.approx(se2 ** 2 / ((1 / 3) ** 2 / 2 + (10 / 12) ** 2 / 3))
    assert str(d).startswith("\u22123.0 [") and "Welch t-interval, p = " in str(d)
    for none in (S.welch([1], [2, 3]), S.welch([0, 0, 0], [0, 0])):
        assert all(math.isnan(x) for x in (none.low, none.high, none.t, none.df, none.p))
    assert str(S.welch([1], [2, 3])) == "\u22121.5 (no test: a group has one value)"
    assert str(S.welch([0, 0], [0, 0])) == "+0.0 (no test: no spread)"


@pytest.mark.parametrize("seed", range(4))
def test_paired_matches_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    a = rng.normal(5, 2, 3 + 2 * seed)
    b = a + rng.normal(0.5, 1, len(a))
    d = S.paired(a, b, 0.95)
    ref = st.ttest_rel(a, b)
    assert d.t == pytest.approx(ref.statistic) and d.p == pytest.approx(ref.pvalue)
    assert d.df == len(a) - 1 and d.n_a == d.n_b == len(a)
    ci = ref.confidence_interval(0.95)
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_paired_removes_what_the_pairs_share():
    a, b = [10.0, 20.0, 30.0], [11.0, 21.5, 30.8]  # differences -1, -1.5, -0.8
    d = S.paired(a, b)
    assert d.diff == pytest.approx(-1.1) and d.p < 0.05 < 0.8 < S.welch(a, b).p
    assert d.low < -0.8 and d.high < 0


def test_paired_without_spread():
    same = S.paired([1, 2, 3], [2, 3, 4])  # every difference is -1
    assert same.t == -math.inf and same.p == 0.0 and (same.low, same.high) == (-1.0, -1.0)
    zero = S.paired([1, 2, 3], [1, 2, 3])
    assert math.isnan(zero.t) and math.isnan(zero.p)


# ----------------------------------------------------------------------------- mcnemar
def test_mcnemar_exact_by_hand():
    # 1 image only a gets right, 9 only b, 30 both, 10 neither
    a = [1] * 1 + [0] * 9 + [1] * 30 + [0] * 10
    b = [0] * 1 + [1] * 9 + [1] * 30 + [0] * 10
    r = S.mcnemar(np.array(a, bool), b)
    # two-sided exact binomial: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert (r.a_only, r.b_only, r.n) == (1, 9, 50) and r.p == pytest.approx(22 / 1024)
    assert r.diff == pytest.approx((1 - 9) / 50)
    back = S.mcnemar(b, a)
    assert back.p == pytest.approx(r.p) and back.diff == pytest.approx(-r.diff)
    assert S.mcnemar([1, 0, 1], [1, 0, 1]).p == 1.0  # they never disagree
    assert str(r) == "\u221216.0 points (1 vs 9 of 50 images, McNemar p = 0.021)"


# ----------------------------------------------------------------------------- holm
def test_holm_textbook_example():
    # Holm (1979) as Wikipedia works it: four hypotheses, alpha 0.05; H4 and H1 rejected
    h = S.holm({"H1": 0.01, "H2": 0.04, "H3": 0.03, "H4": 0.005})
    assert h.adjusted == pytest.approx({"H1": 0.03, "H2": 0.06, "H3": 0.06, "H4": 0.02})
    assert list(h.adjusted) == ["H1", "H2", "H3", "H4"]
    assert h.rejected == {"H1": True, "H2": False, "H3": False, "H4": True}
    seq = S.holm([0.01, 0.04, 0.03, 0.005])
    assert isinstance(seq.adjusted, tuple) and seq.adjusted == pytest.approx((0.03, 0.06, 0.06, 0.02))
    assert S.holm([0.3]).adjusted == (0.3,) and S.holm([0.6, 0.7, 0.9]).adjusted == (1.0, 1.0, 1.0)


def _step_down(p, alpha):
    """Holm's procedure as stated: test the k-th smallest at alpha / (m - k + 1), stop at
    the first that fails."""
    m, rejected = len(p), [False] * len(p)
    for k, i in enumerate(sorted(range(m), key=lambda i: p[i])):
        if p[i] > alpha / (m - k):
            break
        rejected[i] = True
    return rejected


@pytest.mark.parametrize("seed", range(20))
def test_holm_properties_and_step_down(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 12))
    p = rng.uniform(0, 0.1, m) ** rng.uniform(0.5, 2)
    h = S.holm(list(p))
    adj = np.array(h.adjusted)
    assert (adj >= p).all() and (adj <= 1).all()
    assert (adj <= np.minimum(1, m * p) + 1e-15).all()  # never above Bonferroni
    order = np.argsort(p)
    assert (np.diff(adj[order]) >= 0).all()  # monotone in the raw p's order
    for alpha in (0.01, 0.05, 0.1):
        assert list(S.holm(list(p), alpha).rejected) == _step_down(list(p), alpha)


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_of_an_accuracy_is_the_binomial_quantiles_and_seeded():
    # the bootstrap distribution of the mean of n 0/1 values is Binomial(n, p̂) / n
    correct = np.zeros(400, bool)
    correct[:320] = True
    iv = S.bootstrap_interval(correct, seed=3)
    lo, hi = st.binom.ppf([0.025, 0.975], 400, 0.8) / 400
    assert iv.mean == 0.8 and iv.n == 400 and iv.low < iv.mean < iv.high
    assert abs(iv.low - lo) <= 2 / 400 and abs(iv.high - hi) <= 2 / 400
    assert S.bootstrap_interval(correct, seed=3) == iv  # the same seed, the same interval
    other = S.bootstrap_interval(correct, seed=4)
    assert (other.low, other.high) != (iv.low, iv.high)
    assert iv.scaled(100).format(unit="%").startswith("80.0% [")
    assert "percentile bootstrap over images, n = 400" in str(iv)
    bca = S.bootstrap_interval(correct, method="BCa", n_resamples=2000)
    assert abs(bca.low - lo) <= 3 / 400 and abs(bca.high - hi) <= 3 / 400


def test_bootstrap_over_seeds_and_paired():
    rng = np.random.default_rng(0)
    a = rng.random((3, 300)) < 0.8  # three seeds on the same 300 images
    iv = S.bootstrap_interval(a, n_resamples=2000)
    assert iv.mean == pytest.approx(a.mean()) and "3 seeds" in iv.method
    assert (iv.low, iv.high) == (S.bootstrap_interval(a.mean(0), n_resamples=2000).low,
                                 S.bootstrap_interval(a.mean(0), n_resamples=2000).high)
    # b disagrees with a on 8 images of each seed: the paired interval of the difference is
    # less than half as wide as one that treats the two accuracies as independent
    b = a.copy()
    b[:, :8] = ~b[:, :8]
    d = S.paired_bootstrap(a, b, n_resamples=2000)
    assert d.mean == pytest.approx(a.mean() - b.mean()) and d.low <= d.mean <= d.high
    assert str(d.scaled(100)).startswith("+") and "paired percentile bootstrap" in str(d)
    own = S.bootstrap_interval(b, n_resamples=2000)
    assert d.high - d.low < 0.5 * math.hypot(iv.high - iv.low, own.high - own.low)
    zero = S.paired_bootstrap(a[0], a[0], n_resamples=200)
    assert (zero.low, zero.high) == (0.0, 0.0)
    one = S.bootstrap_interval([1])
    assert math.isnan(one.low) and one.format() == "1.0 (n = 1, no interval)"


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, says", [
    (lambda: S.mean_interval([]), "empty"),
    (lambda: S.mean_interval([1.0, float("nan")]), "NaN"),
    (lambda: S.mean_interval([[1, 2], [3, 4]]), "shape (n,)"),
    (lambda: S.mean_interval(["a"]), "numbers"),
    (lambda: S.mean_interval([1, 2], level=95), "between 0 and 1"),
    (lambda: S.welch([1, 2], [], 0.95), "b is empty"),
    (lambda: S.welch([1, 2], [3, 4], 0.0), "between 0 and 1"),
    (lambda: S.paired([1, 2, 3], [1, 2]), "same length"),
    (lambda: S.mcnemar([1, 0, 2], [1, 0, 1]), "booleans or 0/1"),
    (lambda: S.mcnemar([1, 0], [1, 0, 1]), "same length"),
    (lambda: S.holm([]), "empty"),
    (lambda: S.holm([0.1, 1.5]), "between 0 and 1"),
    (lambda: S.holm({"a": float("nan")}), "NaN"),
    (lambda: S.holm([0.1], alpha=1), "alpha must be"),
    (lambda: S.bootstrap_interval([1, 0, 1], method="bca"), "percentile, basic, BCa"),
    (lambda: S.bootstrap_interval([1, 0, 1], n_resamples=0), "positive integer"),
    (lambda: S.bootstrap_interval([1, 0, 1], seed=1.5), "seed must be an integer"),
    (lambda: S.bootstrap_interval(np.ones((2, 2, 2))), "(seeds, images)"),
    (lambda: S.paired_bootstrap([1, 0, 1], [1, 0]), "same length"),
])
def test_bad_input_is_one_line_naming_what_is_valid(call, says):
    with pytest.raises(ValueError) as e:
        call()
    assert says in str(e.value) and "\n" not in str(e.value)


def test_format_p():
    assert [S.format_p(p) for p in (0.1234, 0.05, 0.0123, 0.0004, math.nan)] == \
        ["p = 0.12", "p = 0.05", "p = 0.012", "p < 0.001", "p = nan"]
