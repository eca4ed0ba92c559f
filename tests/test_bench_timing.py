"""The benchmarks' timing helpers (pocketbnn.bench): call counts, per-round samples, ratios."""

from pocketbnn.bench import Stats, interleaved, paired_ratio


def test_interleaved_calls_each_contender_as_asked_and_keeps_rounds_aligned():
    calls = {"a": 0, "b": 0}

    def count(name):
        calls[name] += 1

    stats = interleaved({"a": lambda: count("a"), "b": lambda: count("b")}, rounds=7, warmup=2,
                        repeat={"a": 3})
    # a: 2 warm-up calls, then per round one untimed call and 3 timed ones; b: one per round.
    assert calls == {"a": 2 + 7 * 4, "b": 2 + 7}
    assert stats["a"].samples == stats["b"].samples == 7
    assert len(stats["a"].wall) == len(stats["b"].wall) == 7
    assert stats["a"].p10 <= stats["a"].median <= stats["a"].p90


def test_paired_ratio_is_the_median_of_round_by_round_ratios():
    # a takes 2x b's time in two of three rounds, the machine drifting under both: the paired ratio
    # is 2, while the ratio of the medians is 4 / 20 = 0.2 here.
    a = Stats.of([2.0, 4.0, 40.0], [2.0, 4.0, 40.0])
    b = Stats.of([1.0, 20.0, 20.0], [1.0, 20.0, 20.0])
    assert a.median / b.median == 0.2
    assert paired_ratio(a, b) == 2.0
