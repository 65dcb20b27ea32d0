"""The book's display helpers (zfbook.display) that are plain functions."""
from zfbook.display import series


def test_series_joins_words_as_a_sentence_lists_them():
    assert series([]) == "" and series(["conv1"]) == "conv1"
    assert series(["conv1", "conv5"]) == "conv1 and conv5"
    assert series(["conv1", 2, "fc7"]) == "conv1, 2 and fc7"
    assert series(("a", "b"), "or") == "a or b"
