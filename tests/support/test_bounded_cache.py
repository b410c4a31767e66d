"""The bounded cache: at most so many entries, the least recently used forgotten first."""

import threading

from qstore_pl.support.bounded_cache import BoundedCache


def test_storing_past_the_bound_forgets_the_least_recently_used():
    cache = BoundedCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache["a"] == 1  # "a" used: "b" is now the oldest
    cache["c"] = 3
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_asking_whether_a_key_is_there_does_not_count_as_use():
    cache = BoundedCache(2)
    cache["a"], cache["b"] = 1, 2
    assert "a" in cache
    cache["c"] = 3
    assert "a" not in cache and "b" in cache


def test_get_or_build_builds_once_and_nothing_when_building_fails():
    cache = BoundedCache(4)
    built = []
    assert cache.get_or_build("k", lambda: built.append(1) or "v") == "v"
    assert cache.get_or_build("k", lambda: built.append(1) or "w") == "v"
    assert built == [1]

    def fails():
        raise ValueError("no")

    try:
        cache.get_or_build("x", fails)
    except ValueError:
        pass
    assert "x" not in cache


def test_no_bound_keeps_everything_and_pop_and_clear_forget():
    cache = BoundedCache(None)
    for i in range(1000):
        cache[i] = i
    assert len(cache) == 1000 and cache.pop(5) == 5 and cache.pop(5) is None
    cache.clear()
    assert len(cache) == 0


def test_threads_sharing_a_cache_never_see_it_past_its_bound():
    cache = BoundedCache(8)
    errors = []

    def work(offset):
        try:
            for i in range(2000):
                cache[(offset, i % 16)] = i
                cache.get((offset, (i + 3) % 16))
                assert len(cache) <= 8
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache) == 8
