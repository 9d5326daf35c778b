import distillguard


def test_all_names_resolve() -> None:
    for name in distillguard.__all__:
        assert getattr(distillguard, name) is not None, name


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in distillguard.__all__ if n != "__version__"]
    assert names == sorted(set(names))


def test_unknown_attribute_raises() -> None:
    import pytest

    with pytest.raises(AttributeError):
        distillguard.does_not_exist  # noqa: B018
